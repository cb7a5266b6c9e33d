// The fused C kernels against plain Double implementations of the same formulas.
import Foundation
import Tensor
import XCTest

final class KernelTests: XCTestCase {
    func testRMSNormMatchesDefinition() {
        let rows = 3, cols = 37
        let x = (0..<rows * cols).map { Float(sin(Double($0) * 0.7)) * 3 }
        let w = (0..<cols).map { Float(1 + 0.01 * Double($0)) }
        var y = [Float](repeating: 0, count: rows * cols), rstd = [Float](repeating: 0, count: rows)
        Kernels.rmsNorm(x, weight: w, into: &y, rstd: &rstd, rows: rows, cols: cols, eps: 1e-5)
        for r in 0..<rows {
            let ms = (0..<cols).reduce(0.0) { $0 + Double(x[r * cols + $1]) * Double(x[r * cols + $1]) } / Double(cols)
            let inv = 1 / (ms + 1e-5).squareRoot()
            XCTAssertEqual(Double(rstd[r]), inv, accuracy: 1e-6 * inv)
            for c in 0..<cols { XCTAssertEqual(Double(y[r * cols + c]), Double(w[c]) * Double(x[r * cols + c]) * inv, accuracy: 1e-5) }
        }
    }

    func testCausalSoftmaxMasksAndNormalises() {
        let t = 3, s = 21, q0 = 18  // queries at positions 18, 19, 20 over 21 keys
        var scores = (0..<t * s).map { Float(cos(Double($0))) * 4 }
        let raw = scores
        Kernels.causalSoftmax(&scores, queries: t, keys: s, firstQueryPosition: q0, scale: 0.5)
        for i in 0..<t {
            let visible = q0 + i + 1
            let mx = (0..<visible).map { Double(raw[i * s + $0]) * 0.5 }.max()!
            let z = (0..<visible).reduce(0.0) { $0 + exp(Double(raw[i * s + $1]) * 0.5 - mx) }
            for j in 0..<s {
                let expected = j < visible ? exp(Double(raw[i * s + j]) * 0.5 - mx) / z : 0
                XCTAssertEqual(Double(scores[i * s + j]), expected, accuracy: 1e-6, "row \(i) key \(j)")
            }
        }
    }

    func testRopeRotatesHalvesAndInverts() {
        let d = 6, heads = 2
        var x = (0..<heads * d).map { Float($0 + 1) }
        let orig = x
        let cosT: [Float] = [1, 1, 1, Float(cos(0.3)), Float(cos(0.2)), Float(cos(0.1))]   // (P=2, D/2=3)
        let sinT: [Float] = [0, 0, 0, Float(sin(0.3)), Float(sin(0.2)), Float(sin(0.1))]
        Kernels.rope(&x, positions: [1], cos: cosT, sin: sinT, rows: 1, heads: heads, headDim: d)
        for h in 0..<heads {
            for i in 0..<3 {
                let a = Double(orig[h * d + i]), b = Double(orig[h * d + i + 3]), c = Double(cosT[3 + i]), s = Double(sinT[3 + i])
                XCTAssertEqual(Double(x[h * d + i]), a * c - b * s, accuracy: 1e-5)
                XCTAssertEqual(Double(x[h * d + i + 3]), b * c + a * s, accuracy: 1e-5)
            }
        }
        Kernels.rope(&x, positions: [1], cos: cosT, sin: sinT, rows: 1, heads: heads, headDim: d, inverse: true)
        for i in 0..<x.count { XCTAssertEqual(x[i], orig[i], accuracy: 1e-5) }
    }

    func testSiluMulAndHalfConversions() {
        let g: [Float] = (0..<19).map { Float($0 - 9) * 0.7 }, u: [Float] = (0..<19).map { Float($0) * 0.1 }
        var h = [Float](repeating: 0, count: 19)
        Kernels.siluMul(g, u, into: &h, count: 19)
        for i in 0..<19 { XCTAssertEqual(Double(h[i]), Double(g[i]) / (1 + exp(-Double(g[i]))) * Double(u[i]), accuracy: 1e-6) }
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
