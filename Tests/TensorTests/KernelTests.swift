// The fused C kernels against plain Double implementations of the same formulas.
import Foundation
import Tensor
import TestSupport
import XCTest

final class KernelTests: XCTestCase {
    func testRMSNormMatchesDefinition() {
        let rows = 3, cols = 37
        let x = (0..<rows * cols).map { Float(sin(Double($0) * 0.7)) * 3 }
        let w = (0..<cols).map { Float(1 + 0.01 * Double($0)) }
        var y = [Float](repeating: 0, count: rows * cols), rstd = [Float](repeating: 0, count: rows)
        Kernels.rmsNorm(x, weight: w, into: &y, rstd: &rstd, rows: rows, cols: cols, eps: 1e-5)
        var rstdError = 0.0, yError = 0.0
        for r in 0..<rows {
            let ms = (0..<cols).reduce(0.0) { $0 + Double(x[r * cols + $1]) * Double(x[r * cols + $1]) } / Double(cols)
            let inv = 1 / (ms + 1e-5).squareRoot()
            rstdError = max(rstdError, abs(Double(rstd[r]) - inv) / inv)
            for c in 0..<cols { yError = max(yError, abs(Double(y[r * cols + c]) - Double(w[c]) * Double(x[r * cols + c]) * inv)) }
        }
        assertPinned("kernel.rmsnorm", rstdError, within: Tolerance.rmsNormRstdRelative, "rstd, relative")
        assertPinned("kernel.rmsnorm", yError, within: Tolerance.rmsNormOutput, "y (|y| ≤ 5)")
    }

    func testCausalSoftmaxMasksAndNormalises() {
        let t = 3, s = 21, q0 = 18  // queries at positions 18, 19, 20 over 21 keys
        var scores = (0..<t * s).map { Float(cos(Double($0))) * 4 }
        let raw = scores
        Kernels.causalSoftmax(&scores, queries: t, keys: s, firstQueryPosition: q0, scale: 0.5)
        var worst = 0.0
        for i in 0..<t {
            let visible = q0 + i + 1
            let mx = (0..<visible).map { Double(raw[i * s + $0]) * 0.5 }.max()!
            let z = (0..<visible).reduce(0.0) { $0 + exp(Double(raw[i * s + $1]) * 0.5 - mx) }
            for j in 0..<s {
                let expected = j < visible ? exp(Double(raw[i * s + j]) * 0.5 - mx) / z : 0
                if j >= visible { XCTAssertEqual(scores[i * s + j], 0, "row \(i) key \(j) is masked") }
                worst = max(worst, abs(Double(scores[i * s + j]) - expected))
            }
        }
        assertPinned("kernel.softmax", worst, within: Tolerance.causalSoftmax)
    }

    func testRopeRotatesHalvesAndInverts() {
        let d = 6, heads = 2
        var x = (0..<heads * d).map { Float($0 + 1) }
        let orig = x
        let cosT: [Float] = [1, 1, 1, Float(cos(0.3)), Float(cos(0.2)), Float(cos(0.1))]   // (P=2, D/2=3)
        let sinT: [Float] = [0, 0, 0, Float(sin(0.3)), Float(sin(0.2)), Float(sin(0.1))]
        Kernels.rope(&x, positions: [1], cos: cosT, sin: sinT, rows: 1, heads: heads, headDim: d)
        var worst = 0.0
        for h in 0..<heads {
            for i in 0..<3 {
                let a = Double(orig[h * d + i]), b = Double(orig[h * d + i + 3]), c = Double(cosT[3 + i]), s = Double(sinT[3 + i])
                worst = max(worst, abs(Double(x[h * d + i]) - (a * c - b * s)), abs(Double(x[h * d + i + 3]) - (b * c + a * s)))
            }
        }
        assertPinned("kernel.rope", worst, within: Tolerance.ropeRotation, "rotation (|x| ≤ 12)")
        Kernels.rope(&x, positions: [1], cos: cosT, sin: sinT, rows: 1, heads: heads, headDim: d, inverse: true)
        assertPinned("kernel.rope", Double(zip(x, orig).map { abs($0 - $1) }.max()!), within: Tolerance.ropeRotation, "inverse")
    }

    func testSiluMulAndHalfConversions() {
        let g: [Float] = (0..<19).map { Float($0 - 9) * 0.7 }, u: [Float] = (0..<19).map { Float($0) * 0.1 }
        var h = [Float](repeating: 0, count: 19)
        Kernels.siluMul(g, u, into: &h, count: 19)
        var siluError = 0.0
        for i in 0..<19 {
            let gi = Double(g[i]), expected = gi / (1 + exp(-gi)) * Double(u[i])
            siluError = max(siluError, abs(Double(h[i]) - expected))
        }
        assertPinned("kernel.silu", siluError, within: Tolerance.siluMul, "|h| ≤ 11")
        // f16 and bf16 of exactly representable values round trip exactly.
        let values: [Float] = [0, -2, 0.5, 1024, -0.0078125, 3.25, 65504, 1.5, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        var half = [UInt16](repeating: 0, count: values.count), back = [Float](repeating: 0, count: values.count)
        Kernels.f32ToF16(values, &half, values.count)
        Kernels.f16ToF32(half, &back, values.count)
        XCTAssertEqual(back, values)
        Kernels.f32ToBF16(values.map { $0 == 65504 ? 65536 : $0 }, &half, values.count)
        Kernels.bf16ToF32(half, &back, values.count)
        XCTAssertEqual(back, values.map { $0 == 65504 ? 65536 : $0 })
    }
}
