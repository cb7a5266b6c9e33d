// Element-for-element comparison of large arrays (weights, logits, gradients, bytes). XCTAssertEqual prints both
// arrays when they differ, megabytes of numbers for one gradient; this prints what locates the difference: the
// counts, how many elements differ, the first that does and the largest |Δ|.
import XCTest

/// How `actual` differs from `expected`, or nil when they are equal element for element (`==`, so NaN never
/// equals NaN): "1000 vs 1000 elements, 3 differ, the first at index 17 (0.5 vs 0.25), max |Δ| 0.25".
public func arrayDifference<T: Equatable>(_ actual: [T], _ expected: [T], delta: (T, T) -> Double) -> String? {
    var differing = 0, first: Int?, largest = 0.0
    for i in 0..<min(actual.count, expected.count) where actual[i] != expected[i] {
        differing += 1
        if first == nil { first = i }
        let d = delta(actual[i], expected[i])
        largest = d.isNaN || largest.isNaN ? .nan : max(largest, d)
    }
    guard differing > 0 || actual.count != expected.count else { return nil }
    var text = "\(actual.count) vs \(expected.count) elements, \(differing) differ"
    if let first {
        text += ", the first at index \(first) (\(actual[first]) vs \(expected[first])), max |Δ| \(largest)"
    } else {
        text += " in the \(min(actual.count, expected.count)) both have"
    }
    return text
}

/// Asserts that two float arrays are equal element for element, printing only where they differ.
public func assertEqualElements<T: BinaryFloatingPoint>(_ actual: [T], _ expected: [T], _ message: @autoclosure () -> String = "",
                                                       file: StaticString = #filePath, line: UInt = #line) {
    if let difference = arrayDifference(actual, expected, delta: { Double(abs($0 - $1)) }) {
        XCTFail([message(), difference].filter { !$0.isEmpty }.joined(separator: ": "), file: file, line: line)
    }
}

/// Asserts that two integer arrays (bytes, bit patterns, token ids) are equal element for element, printing only
/// where they differ.
public func assertEqualElements<T: BinaryInteger>(_ actual: [T], _ expected: [T], _ message: @autoclosure () -> String = "",
                                                 file: StaticString = #filePath, line: UInt = #line) {
    if let difference = arrayDifference(actual, expected, delta: { abs(Double($0) - Double($1)) }) {
        XCTFail([message(), difference].filter { !$0.isEmpty }.joined(separator: ": "), file: file, line: line)
    }
}
