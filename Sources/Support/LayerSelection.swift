// Layer lists as users write them: "20-27" or "3,7-9", 0-based with both ends inclusive ("20-27" is 8
// layers). Other tools' half-open ranges (mergekit's layer_range) are converted elsewhere and say so. Every
// layer list of the CLI, the recipes, finetune and speculation is read here, so that all refuse the same slips: an
// empty item, a layer given twice, a range written backwards, a negative number; and every list the toolkit prints
// or splits into runs (a cut's report, ReplaceMe's maps) is written here. It sits below Analysis and Surgery, which
// both speak of layer runs.
import Foundation

/// A set of 0-based layer indices.
public struct LayerSelection: Equatable, Sendable, CustomStringConvertible {
    /// Sorted, without repeats.
    public let layers: [Int]

    /// The layers given; repeats are merged.
    public init(_ layers: [Int]) {
        self.layers = Array(Set(layers)).sorted()
    }

    /// The layers of one run, e.g. 11...18.
    public init(_ run: ClosedRange<Int>) {
        self.init(Array(run))
    }

    /// Parses "a", "a-b" (inclusive, a ≤ b) and comma-separated lists of them; spaces around items are
    /// allowed, a number given twice (also inside a range) is not. `option` names the flag or key in errors.
    public init(parsing text: String, option: String = "--layers") throws {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { throw PruneError(option, "no layers given") }
        var layers: [Int] = []
        for item in items {
            guard !item.isEmpty else { throw PruneError(option, "empty item in \"\(text)\" (write e.g. 3,7-9)") }
            if item.hasPrefix("-") { throw PruneError(option, "\"\(item)\": layers are counted from 0, so none is negative") }
            let ends = item.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard ends.count <= 2, let first = Self.index(ends[0]), let last = Self.index(ends.last!) else {
                throw PruneError(option, "\"\(item)\" is not a layer or an inclusive range a-b of 0-based layers")
            }
            guard first <= last else { throw PruneError(option, "range \"\(item)\" runs backwards (write \(last)-\(first))") }
            if let twice = (first...last).first(where: layers.contains) {
                throw PruneError(option, "\(twice) is given twice in \"\(text)\"")
            }
            layers += Array(first...last)
        }
        self.init(layers)
    }

    /// A non-negative decimal number, nothing else (no sign, no spaces inside).
    private static func index(_ s: String) -> Int? {
        guard !s.isEmpty, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(s)
    }

    /// Checks every layer lies in 0…L−1 and that at least one of the L layers stays.
    public func validate(layerCount L: Int, option: String = "--layers") throws {
        if let bad = layers.first(where: { $0 >= L }) {
            throw PruneError(option, "layer \(bad) is outside 0…\(L - 1) (the model has \(L) layers, counted from 0)")
        }
        guard layers.count < L else {
            throw PruneError(option, "cutting \(description) would leave no layer (the model has \(L))")
        }
    }

    /// The layers of 0…L−1 not selected.
    public func complement(layerCount L: Int) -> [Int] {
        let dropped = Set(layers)
        return (0..<L).filter { !dropped.contains($0) }
    }

    /// Inclusive ranges, e.g. "2-3,7".
    public var description: String { Self.ranges(layers).map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",") }

    /// Runs of consecutive layers as closed ranges.
    public static func ranges(_ layers: [Int]) -> [ClosedRange<Int>] {
        var out: [ClosedRange<Int>] = []
        for i in layers.sorted() {
            if let last = out.last, last.upperBound + 1 == i { out[out.count - 1] = last.lowerBound...i } else if out.last?.contains(i) != true { out.append(i...i) }
        }
        return out
    }
}
