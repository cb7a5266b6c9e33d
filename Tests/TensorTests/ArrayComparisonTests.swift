// The helper that compares large arrays says where they differ in one short line, never printing the arrays.
import TestSupport
import XCTest

final class ArrayComparisonTests: XCTestCase {
    let delta = { (a: Float, b: Float) in Double(abs(a - b)) }

    func testEqualArraysHaveNoDifference() {
        XCTAssertNil(arrayDifference([Float](repeating: 1, count: 1000), [Float](repeating: 1, count: 1000), delta: delta))
        XCTAssertNil(arrayDifference([Float](), [], delta: delta))
        XCTAssertNil(arrayDifference([Float(0)], [-0.0], delta: delta), "== as Float has it")
    }

    func testADifferenceIsCountsFirstIndexAndLargestDelta() {
        var a = [Float](repeating: 1, count: 1_000_000), b = a
        a[17] = 0.5; a[900_000] = -2; b[999_999] = 1.25
        XCTAssertEqual(arrayDifference(a, b, delta: delta),
                       "1000000 vs 1000000 elements, 3 differ, the first at index 17 (0.5 vs 1.0), max |Δ| 3.0")
        XCTAssertEqual(arrayDifference([Float(1), 2], [1, 2, 3], delta: delta), "2 vs 3 elements, 0 differ in the 2 both have")
        XCTAssertEqual(arrayDifference([Float.nan], [.nan], delta: delta), "1 vs 1 elements, 1 differ, the first at index 0 (nan vs nan), max |Δ| nan")
    }

    func testTheIntegerFormMeasuresWithoutOverflow() {
        XCTAssertEqual(arrayDifference([UInt8(0), 255], [255, 255], delta: { abs(Double($0) - Double($1)) }),
                       "2 vs 2 elements, 1 differ, the first at index 0 (0 vs 255), max |Δ| 255.0")
    }
}
