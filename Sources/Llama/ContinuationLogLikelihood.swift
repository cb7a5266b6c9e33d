// The summed log-likelihood of a continuation's tokens after its context, as lm-eval-harness's Hugging Face
// backend computes it for a causal model (`_loglikelihood_tokens`): the input is context + continuation cut to
// its last max_position_embeddings + 1 tokens, less the last token; the continuation's tokens are predicted by
// the input's last positions. Sequences are batched longest first and padded on the right: causal attention
// never lets a position see the padding after it, so padding cannot change a score.
// Dimension glossary: B batch, T tokens (the longest input of a batch), V vocab.
import Foundation
import Support
import Tensor

/// A continuation to score: its context's token ids and its own.
public struct ContinuationTokens: Equatable, Sendable {
    /// The context's ids (BOS included where the tokenizer adds one); at least one.
    public var context: [Int32]
    /// The continuation's ids; at least one, at most max_position_embeddings.
    public var continuation: [Int32]

    public init(context: [Int32], continuation: [Int32]) {
        self.context = context
        self.continuation = continuation
    }
}

/// Log-likelihoods of continuations.
public enum ContinuationLogLikelihood {
    /// The model input of `request`: context + continuation cut from the left to the last `maxLength` + 1 tokens,
    /// less the last one (which is predicted, never read).
    public static func input(_ request: ContinuationTokens, maxLength: Int) -> [Int32] {
        Array((request.context + request.continuation).suffix(maxLength + 1).dropLast())
    }

    /// Σ log p(continuation token | tokens before it), one per request in order, each summed in Double from the
    /// log-softmax of its position; `batchSize` inputs per forward pass.
    public static func logLikelihoods(model: LlamaModel, requests: [ContinuationTokens], batchSize: Int = 8,
                                      progress: ProgressReporter? = nil) -> [Double] {
        precondition(batchSize >= 1, "batch size \(batchSize)")
        let maxLength = model.config.maxPositionEmbeddings, V = model.config.vocabSize
        for r in requests {
            precondition(!r.context.isEmpty && !r.continuation.isEmpty && r.continuation.count <= maxLength,
                         "a request needs context tokens and 1…\(maxLength) continuation tokens")
        }
        let inputs = requests.map { input($0, maxLength: maxLength) }
        // Longest first, ties in request order: batches of similar lengths, and the same batches on every run.
        let order = inputs.indices.sorted { inputs[$0].count != inputs[$1].count ? inputs[$0].count > inputs[$1].count : $0 < $1 }
        var out = [Double](repeating: 0, count: requests.count)
        var done = 0
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let batch = Array(order[start..<min(start + batchSize, order.count)])
            let T = inputs[batch[0]].count
            var tokens = [Int32](repeating: 0, count: batch.count * T)
            for (b, i) in batch.enumerated() { tokens.replaceSubrange(b * T..<b * T + inputs[i].count, with: inputs[i]) }
            let logits = model.forward(tokens: tokens, batch: batch.count, length: T).logits
            withExtendedLifetime(logits) {
                for (b, i) in batch.enumerated() {
                    let continuation = requests[i].continuation, first = inputs[i].count - continuation.count
                    var sum = 0.0
                    for (j, target) in continuation.enumerated() {
                        let row = logits.data + (b * T + first + j) * V
                        sum -= Kernels.crossEntropyVectorized(row, vocab: V, target: target, dLogits: nil, gradScale: 0)
                    }
                    out[i] = sum
                }
            }
            done += batch.count
            progress?.update(done: done, units: Double(batch.reduce(0) { $0 + inputs[$1].count }))
        }
        return out
    }
}
