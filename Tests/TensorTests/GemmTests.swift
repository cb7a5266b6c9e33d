// OpenBLAS through Gemm equals the naive Double-accumulating reference for every transpose combination,
// with leading dimensions wider than the matrices (as attention reads heads in place).
import Tensor
import TestSupport
import XCTest

final class GemmTests: XCTestCase {
    func random(_ n: Int, seed: Int) -> [Float] {
        var s = UInt64(seed) &* 6364136223846793005 &+ 1442695040888963407
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(s >> 40) % 2001 - 1000) / 1000
        }
    }

    func testAllTransposesWithStridesMatchNaive() {
        let (m, n, k) = (7, 5, 9)
        for transA in [false, true] {
            for transB in [false, true] {
                let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 2, ldc = n + 4
                let a = random((transA ? k : m) * lda, seed: 1), b = random((transB ? n : k) * ldb, seed: 2)
                let c0 = random(m * ldc, seed: 3)
                var fast = c0, slow = c0
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        Gemm.multiply(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.7, a: ap.baseAddress!, lda: lda,
                                      b: bp.baseAddress!, ldb: ldb, beta: 0.5, c: &fast, ldc: ldc, parallelism: .allCores)
                        Gemm.naive(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.7, a: ap.baseAddress!, lda: lda,
                                   b: bp.baseAddress!, ldb: ldb, beta: 0.5, c: &slow, ldc: ldc)
                    }
                }
                let worst = (0..<m * ldc).map { abs(fast[$0] - slow[$0]) }.max()!
                assertPinned("gemm.naive", Double(worst), within: Tolerance.gemm, "transA \(transA) transB \(transB)")
            }
        }
    }

    func testLinearIsXTimesWTransposed() {
        let x: [Float] = [1, 2, 3, 4, 5, 6]      // (2, 3)
        let w: [Float] = [1, 0, 0, 0, 1, 1]      // (2, 3): out0 = x0, out1 = x1 + x2
        var y = [Float](repeating: 0, count: 4)
        Gemm.linear(x, rows: 2, inFeatures: 3, weight: w, outFeatures: 2, into: &y, parallelism: .allCores)
        XCTAssertEqual(y, [1, 5, 4, 11])
    }
}
