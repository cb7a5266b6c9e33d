// Fixed-length training windows from tokenized records, with next-token targets in the convention of
// NextTokenLoss: targets[p] is the label of position p (the token at p + 1), −100 where nothing counts
// (a masked token, padding, and each window's last position, whose next token lies outside it).
// Packing (the default, as Hugging Face's group_texts): the records' tokens joined into one stream (each
// non-chat record already ends with EOS) and cut into windows of T; the tail shorter than T is dropped.
// No packing: one window per record, truncated to T or padded (padding never counted).
// Dimension glossary: T tokens per window (the context).
import Foundation

/// One training sequence.
public struct TrainingWindow: Equatable, Sendable {
    /// T token ids.
    public var tokens: [Int32]
    /// T labels, −100 where not counted.
    public var targets: [Int32]

    public init(tokens: [Int32], targets: [Int32]) {
        self.tokens = tokens
        self.targets = targets
    }

    /// Labels that count.
    public var countedTargets: Int { targets.lazy.filter { $0 != Self.ignoreIndex }.count }

    /// The label that marks a position as not counted (NextTokenLoss.ignoreIndex).
    public static let ignoreIndex: Int32 = -100

    /// Windows of `context` tokens cut from the records joined into one stream; also the tokens of the
    /// dropped tail.
    public static func packed(_ records: [TokenizedRecord], context T: Int) -> (windows: [TrainingWindow], droppedTokens: Int) {
        precondition(T >= 2, "context \(T)")
        let ids = records.flatMap(\.ids), counted = records.flatMap(\.counted)
        let count = ids.count / T
        let windows = (0..<count).map { w in
            window(Array(ids[w * T ..< (w + 1) * T]), Array(counted[w * T ..< (w + 1) * T]), context: T)
        }
        return (windows, ids.count - count * T)
    }

    /// One window per record: truncated to `context` tokens, or padded with `padID`; also how many records
    /// were truncated.
    public static func unpacked(_ records: [TokenizedRecord], context T: Int, padID: Int32) -> (windows: [TrainingWindow], truncated: Int) {
        precondition(T >= 2, "context \(T)")
        var truncated = 0
        let windows = records.map { r in
            if r.ids.count > T { truncated += 1 }
            return window(Array(r.ids.prefix(T)), Array(r.counted.prefix(T)), context: T, padID: padID)
        }
        return (windows, truncated)
    }

    /// The window of `ids` (n ≤ T, padded to T with `padID`): targets[p] = ids[p + 1] where that token counts.
    static func window(_ ids: [Int32], _ counted: [Bool], context T: Int, padID: Int32 = 0) -> TrainingWindow {
        var targets = [Int32](repeating: ignoreIndex, count: T)
        for p in 0..<max(0, ids.count - 1) where counted[p + 1] { targets[p] = ids[p + 1] }
        return TrainingWindow(tokens: ids + Array(repeating: padID, count: T - ids.count), targets: targets)
    }
}
