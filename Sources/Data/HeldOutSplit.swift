// The held-out part of a training file when no validation file is given: every k-th item (record, or
// window when the file is one document), the same on every run and machine, listed so that the log can
// say exactly which were held out.
import Foundation

/// A deterministic split of `count` items into training and held-out indices.
public struct HeldOutSplit: Equatable, Sendable {
    /// 0-based indices that train, ascending.
    public let train: [Int]
    /// 0-based indices held out, ascending.
    public let heldOut: [Int]
    /// Every k-th item is held out (items k−1, 2k−1, …, 0-based).
    public let every: Int

    /// Holds out about `fraction` (0 < fraction ≤ 0.5) of `count` items: every k-th with k = round(1/fraction),
    /// at least one item when there are two or more, none of a single item.
    public init(count: Int, fraction: Double) {
        precondition(fraction > 0 && fraction <= 0.5, "held-out fraction \(fraction)")
        var k = max(2, Int((1 / fraction).rounded()))
        if count >= 2 && count < k { k = count }   // small files still hold one out: the last
        every = k
        heldOut = count >= 2 ? Array(stride(from: k - 1, to: count, by: k)) : []
        let held = Set(heldOut)
        train = (0..<count).filter { !held.contains($0) }
    }

    /// What was held out, for a log line after "held out: ": "3 of 60 records of train.jsonl (one in 20: lines 20, 40,
    /// 60)" with `unit` ("records of train.jsonl"), `numbered` (what the numbers count: "line") and the 1-based number
    /// `label` gives each index (its line in the file, say).
    public func describe(_ unit: String, numbered: String, label: (Int) -> Int = { $0 + 1 }) -> String {
        let total = train.count + heldOut.count
        guard !heldOut.isEmpty else { return "none of the \(total) \(unit) (too few to hold one out)" }
        let labels = heldOut.map { String(label($0)) }
        let shown = labels.count > 12 ? labels.prefix(6).joined(separator: ", ") + ", …, " + labels.suffix(3).joined(separator: ", ") : labels.joined(separator: ", ")
        return "\(heldOut.count) of \(total) \(unit) (one in \(every): \(numbered)\(labels.count == 1 ? "" : "s") \(shown))"
    }
}
