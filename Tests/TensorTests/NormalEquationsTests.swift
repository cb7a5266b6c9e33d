// Least squares through the Float64 normal equations: a map is recovered from rows it generated, the errors
// computed from the sums equal the errors of the rows, and a rank-deficient problem is refused.
import Tensor
import XCTest

final class NormalEquationsTests: XCTestCase {
    /// Deterministic values in [−1, 1).
    struct Values {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
    }

    /// a (N, C) random, b = a·T + noise; rows picked out of a larger buffer as padding is.
    func problem(rows n: Int, width c: Int, noise: Float) -> (a: [Float], b: [Float], t: [Float], selected: [Int]) {
        var r = Values(state: 7)
        let t = (0..<(c * c)).map { _ in r.next() }
        let a = (0..<(n * c)).map { _ in r.next() }
        var b = [Float](repeating: 0, count: n * c)
        for i in 0..<n {
            for j in 0..<c {
                var s: Float = 0
                for k in 0..<c { s += a[i * c + k] * t[k * c + j] }
                b[i * c + j] = s + noise * r.next()
            }
        }
        return (a, b, t, Array(stride(from: 0, to: n, by: 2)))
    }

    func testRecoversTheMapThatMadeTheRows() throws {
        let c = 12
        let (a, b, t, selected) = problem(rows: 300, width: c, noise: 0)
        var eq = NormalEquations(width: c)
        eq.add(a, b, rows: Array(selected.prefix(70)))
        eq.add(a, b, rows: Array(selected.dropFirst(70)))   // two calls, chunks with and without padding
        XCTAssertEqual(eq.rows, selected.count)
        let solved = try XCTUnwrap(eq.solve())
        let worst = zip(solved, t).map { abs($0 - Double($1)) }.max()!
        XCTAssertLessThan(worst, 1e-4, "largest entry error \(worst)")
        XCTAssertLessThan(eq.squaredError(solved) / eq.targetSquares, 1e-9)
    }

    func testErrorsFromTheSumsEqualTheRowsErrors() throws {
        let c = 8
        let (a, b, _, selected) = problem(rows: 200, width: c, noise: 0.3)
        var eq = NormalEquations(width: c)
        eq.add(a, b, rows: selected)
        let solved = try XCTUnwrap(eq.solve())
        func direct(_ t: [Double]) -> Double {
            var e = 0.0
            for i in selected {
                for j in 0..<c {
                    var s = 0.0
                    for k in 0..<c { s += Double(a[i * c + k]) * t[k * c + j] }
                    e += (s - Double(b[i * c + j])) * (s - Double(b[i * c + j]))
                }
            }
            return e
        }
        let identity = (0..<(c * c)).map { $0 % (c + 1) == 0 ? 1.0 : 0.0 }
        XCTAssertEqual(eq.squaredError(solved), direct(solved), accuracy: 1e-9 * direct(identity))
        XCTAssertEqual(eq.identityError, direct(identity), accuracy: 1e-9 * direct(identity))
        XCTAssertLessThan(eq.squaredError(solved), eq.identityError, "the optimum is no worse than any other map")
        // A nudge away from the solution only adds error (it is the minimum).
        var nudged = solved
        nudged[3] += 0.01
        XCTAssertGreaterThan(direct(nudged), direct(solved))
    }

    func testFewerRowsThanColumnsHaveNoSolution() {
        let c = 16
        let (a, b, _, _) = problem(rows: 10, width: c, noise: 0)
        var eq = NormalEquations(width: c)
        eq.add(a, b, rows: Array(0..<10))
        XCTAssertNil(eq.solve(), "10 rows cannot determine a 16×16 map")
        XCTAssertNil(NormalEquations(width: 4).solve(), "no rows")
    }
}
