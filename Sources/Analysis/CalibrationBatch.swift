// Calibration sequences of unequal length padded on the right into (B, T) batches. Causal attention
// keeps padding from reaching the real positions before it, so padded rows are simply not counted.
// Dimension glossary: B batch, T tokens (the longest sequence of the batch), N = B·T rows.
import Llama

/// One padded batch of calibration sequences.
public struct CalibrationBatch: Sendable {
    /// Row-major token ids (B·T), padding repeats each sequence's last token.
    public let tokens: [Int32]
    /// B
    public let batch: Int
    /// T
    public let length: Int
    /// Real tokens of each sequence (B).
    public let lengths: [Int]
    /// Next-token labels (B·T): −100 at each sequence's last real position and on padding.
    public let targets: [Int32]

    /// Pads `sequences` (each non-empty) to the longest of them.
    public init(_ sequences: [[Int32]]) {
        precondition(!sequences.isEmpty && sequences.allSatisfy { !$0.isEmpty }, "a batch needs non-empty sequences")
        batch = sequences.count
        lengths = sequences.map(\.count)
        length = lengths.max()!
        var tokens: [Int32] = []
        tokens.reserveCapacity(batch * length)
        for s in sequences { tokens += s + Array(repeating: s.last!, count: length - s.count) }
        self.tokens = tokens
        var targets = [Int32](repeating: NextTokenLoss.ignoreIndex, count: batch * length)
        for (b, s) in sequences.enumerated() {
            for t in 0..<(s.count - 1) { targets[b * length + t] = s[t + 1] }
        }
        self.targets = targets
    }

    /// N = B·T
    public var rows: Int { batch * length }
    /// Real (unpadded) tokens in the batch.
    public var realTokens: Int { lengths.reduce(0, +) }
    /// Whether row r (= b·T + t) holds a real token.
    public func isReal(row r: Int) -> Bool { r % length < lengths[r / length] }
    /// The row of sequence b's last real token.
    public func lastRow(of b: Int) -> Int { b * length + lengths[b] - 1 }

    /// Batches of at most `batchSize` sequences, longest first so that little padding is needed.
    public static func batches(_ sequences: [[Int32]], batchSize: Int) -> [CalibrationBatch] {
        precondition(batchSize >= 1, "batch size must be positive")
        let order = sequences.indices.sorted { (sequences[$0].count, $1) > (sequences[$1].count, $0) }
        return stride(from: 0, to: order.count, by: batchSize).map { start in
            CalibrationBatch(order[start..<min(start + batchSize, order.count)].map { sequences[$0] })
        }
    }
}
