// Mean next-token loss and perplexity of a model over token sequences, with sliding windows of
// `context` tokens moved by `stride` (each target counted once, as in transformers' perplexity guide).
import Foundation
import Support
import Tensor

/// One window of a sequence: tokens and how many leading predictions were already counted.
public struct EvaluationWindow: Sendable {
    public var tokens: [Int32]
    /// Predictions (positions) at the start of the window that an earlier window counted.
    public var skip: Int
}

/// Loss / perplexity evaluation.
public enum Evaluation {
    /// Splits each sequence into windows of at most `context` tokens starting every `stride` tokens (at most
    /// `context − 1`, so that consecutive windows share a token and no target is lost).
    public static func windows(_ sequences: [[Int32]], context: Int, stride: Int) -> [EvaluationWindow] {
        precondition(context >= 2 && stride >= 1 && stride <= context, "need context ≥ 2 and 1 ≤ stride ≤ context")
        var out: [EvaluationWindow] = []
        for seq in sequences where seq.count >= 2 {
            var begin = 0
            var counted = 0  // targets [1, counted] already counted: positions < counted predicted
            while true {
                let end = min(begin + context, seq.count)
                let w = Array(seq[begin..<end])
                // Position p in the window predicts token begin+p+1; counted already covers up to index `counted`.
                let skip = max(0, counted - begin)
                if skip < w.count - 1 { out.append(EvaluationWindow(tokens: w, skip: skip)) }
                counted = end - 1
                if end == seq.count { break }
                // Overlap by at least one token so that the first token of the next window is also a target.
                begin = min(begin + stride, end - 1)
            }
        }
        return out
    }

    /// Mean next-token loss over `windows`, batching windows of equal length `batchSize` at a time.
    public static func loss(model: LlamaModel, windows: [EvaluationWindow], batchSize: Int = 4,
                            skipping: Set<Int> = [], progress: ProgressReporter? = nil) -> LossTally {
        var tally = LossTally()
        let groups = Dictionary(grouping: windows.indices, by: { windows[$0].tokens.count })
        var done = 0
        for (length, idx) in groups.sorted(by: { $0.key < $1.key }) {
            for chunk in stride(from: 0, to: idx.count, by: batchSize) {
                let batch = idx[chunk..<min(chunk + batchSize, idx.count)].map { windows[$0] }
                let tokens = batch.flatMap(\.tokens)
                let out = model.forward(tokens: tokens, batch: batch.count, length: length, skipping: skipping)
                let targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: batch.count, length: length, skipFirst: batch.map(\.skip))
                tally.add(NextTokenLoss.tally(logits: out.logits, targets: targets, vocab: model.config.vocabSize))
                done += batch.count
                progress?.update(done: done, units: Double(tokens.count))
            }
        }
        return tally
    }
}
