// Mean next-token cross-entropy: position t predicts token t+1; labels of −100 (prompt masking) and the
// last position of each sequence are not counted.
import Tensor

/// Sum and count of next-token losses, accumulated in Double.
public struct LossTally: Sendable {
    public var sum: Double = 0
    public var count: Int = 0
    public init() {}
    public var mean: Double { count > 0 ? sum / Double(count) : .nan }
    public mutating func add(_ other: LossTally) { sum += other.sum; count += other.count }
}

/// Next-token cross-entropy over logits.
public enum NextTokenLoss {
    /// Label that marks a position as not counted (as in PyTorch/transformers).
    public static let ignoreIndex: Int32 = -100

    /// Tallies the loss of logits (B, T, V) against targets (B·T): targets[r] is the label of row r
    /// (usually tokens shifted left by one, with −100 where nothing is predicted). Rows labelled −100 do
    /// not count; any other label must be a token id of the vocabulary.
    public static func tally(logits: Tensor, targets: [Int32], vocab: Int) -> LossTally {
        precondition(logits.count >= targets.count * vocab, "logits \(logits.shape) for \(targets.count) targets")
        var t = LossTally()
        // The tensor is held for the loop: a pointer taken from a temporary would outlive it.
        withExtendedLifetime(logits) {
            for (r, y) in targets.enumerated() where y != ignoreIndex {
                precondition(y >= 0 && Int(y) < vocab, "target \(y) outside the vocabulary (\(vocab))")
                t.sum += Kernels.crossEntropyVectorized(logits.data + r * vocab, vocab: vocab, target: y, dLogits: nil, gradScale: 0)
                t.count += 1
            }
        }
        return t
    }

    /// Targets for plain next-token prediction: tokens shifted left, −100 at each sequence's last position
    /// and at the first `skip[b]` predictions of sequence b (windows that overlap an earlier one).
    public static func shiftedTargets(tokens: [Int32], batch b: Int, length t: Int, skipFirst: [Int]? = nil) -> [Int32] {
        var out = [Int32](repeating: ignoreIndex, count: b * t)
        for bi in 0..<b {
            let skip = skipFirst?[bi] ?? 0
            for ti in max(0, skip)..<max(0, t - 1) { out[bi * t + ti] = tokens[bi * t + ti + 1] }
        }
        return out
    }
}
