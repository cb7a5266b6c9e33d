// The most likely token of a row of logits, for comparing an early exit's prediction with the full model's.

/// The most likely token of a row of logits.
public enum TopToken {
    /// Index of the largest value; the first one on ties (as torch.argmax).
    public static func argmax(_ x: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        var top = x[0]
        for i in 1..<count where x[i] > top {
            top = x[i]
            best = i
        }
        return best
    }

    /// The argmax of every row of logits (N, V).
    public static func argmax(rows x: UnsafePointer<Float>, count n: Int, vocab: Int) -> [Int] {
        (0..<n).map { argmax(x + $0 * vocab, count: vocab) }
    }
}
