// How far a model's next-token distribution moved from the original's on the same tokens: the mean KL
// divergence KL(original ‖ model) = Σ p_orig (log p_orig − log p_model) and how often both put the same token
// first. Perplexity alone misses damage (a pruned model answering in another language at a fine perplexity);
// the KL says how much of the original's behaviour a cut or healed model kept.
// Dimension glossary: B batch, T tokens, V vocab.
import Foundation
import Support
import Tensor

/// Mean KL divergence from a reference model and top-1 agreement with it.
public struct ReferenceComparison: Sendable {
    /// Mean over compared positions of KL(reference ‖ model), in nats.
    public var meanKL: Double
    /// Fraction of compared positions where both models' argmax agree.
    public var top1Agreement: Double
    /// Positions compared (every counted target of the windows).
    public var positions: Int

    /// Compares `model` with `reference` on `windows` (the positions `Evaluation.loss` counts). Both models must
    /// share the vocabulary.
    public static func compare(model: LlamaModel, reference: LlamaModel, windows: [EvaluationWindow], batchSize: Int = 4,
                               progress: ProgressReporter? = nil) -> ReferenceComparison {
        precondition(model.config.vocabSize == reference.config.vocabSize, "vocabularies differ")
        let V = model.config.vocabSize
        var kl = 0.0, agree = 0, n = 0, done = 0
        let groups = Dictionary(grouping: windows.indices, by: { windows[$0].tokens.count })
        for length in groups.keys.sorted() {
            let idx = groups[length]!
            for chunk in stride(from: 0, to: idx.count, by: batchSize) {
                let batch = idx[chunk..<min(chunk + batchSize, idx.count)].map { windows[$0] }
                let tokens = batch.flatMap(\.tokens)
                let a = model.forward(tokens: tokens, batch: batch.count, length: length).logits
                let b = reference.forward(tokens: tokens, batch: batch.count, length: length).logits
                let targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: batch.count, length: length, skipFirst: batch.map(\.skip))
                withExtendedLifetime((a, b)) {
                    for (r, y) in targets.enumerated() where y != NextTokenLoss.ignoreIndex {
                        let row = divergence(a.data + r * V, reference: b.data + r * V, vocab: V)
                        kl += row.kl
                        if row.sameArgmax { agree += 1 }
                        n += 1
                    }
                }
                done += batch.count
                progress?.update(done: done, units: Double(tokens.count))
            }
        }
        return ReferenceComparison(meanKL: n > 0 ? kl / Double(n) : .nan, top1Agreement: n > 0 ? Double(agree) / Double(n) : .nan,
                                   positions: n)
    }

    /// KL(softmax(ref) ‖ softmax(logits)) of one row, in Double, and whether the argmaxes agree.
    static func divergence(_ logits: UnsafePointer<Float>, reference ref: UnsafePointer<Float>, vocab V: Int) -> (kl: Double, sameArgmax: Bool) {
        let (lseModel, argModel) = Kernels.logSumExp(logits, count: V)
        let (lseRef, argRef) = Kernels.logSumExp(ref, count: V)
        var kl = 0.0
        for i in 0..<V {
            let logP = Double(ref[i]) - lseRef
            let p = exp(logP)
            if p > 0 { kl += p * (logP - (Double(logits[i]) - lseModel)) }
        }
        return (max(0, kl), argModel == argRef)
    }
}
