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

    func testAttentionTilesMaskRescaleAndRecomputeTheSoftmax() {
        // One block of 3 queries (positions 18, 19, 20) over 21 keys in two tiles of 12 and 9 keys: the second
        // tile's rows see 7, 8 and 9 of its keys.
        let t = 3, s = 21, q0 = 18, split = 12, dim = 2, scale: Float = 0.5
        let raw = (0..<t * s).map { Float(cos(Double($0))) * 4 }
        func tile(_ keys: Range<Int>) -> [Float] { (0..<t).flatMap { i in keys.map { raw[i * s + $0] } } }
        var first = tile(0..<split), second = tile(split..<s)
        var m = [Float](repeating: -.infinity, count: t), l = [Float](repeating: 0, count: t)
        var acc = [Float](repeating: 7, count: t * dim)   // stands for the first tile's Σ p·v
        Kernels.attentionTileSoftmax(&first, rows: t, cols: split, ld: split, firstVisible: q0 + 1, scale: scale,
                                     rowMax: &m, rowSum: &l, accumulator: nil, ldAccumulator: dim, dim: dim)
        let firstMax = m
        Kernels.attentionTileSoftmax(&second, rows: t, cols: s - split, ld: s - split, firstVisible: q0 + 1 - split, scale: scale,
                                     rowMax: &m, rowSum: &l, accumulator: &acc, ldAccumulator: dim, dim: dim)
        var worst = 0.0, lse = [Float](repeating: 0, count: t)
        for i in 0..<t {
            let visible = q0 + i + 1
            let x = (0..<visible).map { Double(raw[i * s + $0] * scale) }
            let mx = x.max()!, z = x.reduce(0.0) { $0 + exp($1 - mx) }
            lse[i] = Float(mx + log(z))
            XCTAssertEqual(Double(m[i]), mx, "row \(i): the running max is the max")
            worst = max(worst, abs(Double(l[i]) - z) / z)
            for j in 0..<split { worst = max(worst, abs(Double(first[i * split + j]) - exp(x[j] - Double(firstMax[i])))) }
            for j in split..<s {
                let p = Double(second[i * (s - split) + j - split])
                if j >= visible { XCTAssertEqual(p, 0, "row \(i) key \(j) is masked") } else { worst = max(worst, abs(p - exp(x[j] - mx))) }
            }
            for d in 0..<dim { worst = max(worst, abs(Double(acc[i * dim + d]) - 7 * exp(Double(firstMax[i]) - mx)) / 7) }
        }
        assertPinned("kernel.attention", worst, within: Tolerance.attentionTile, "online softmax: p, running sum, rescaling")
        // The backward recomputes p = exp(scale·s − lse) and ds = p·(dp − delta)·scale from the raw scores.
        var scores = tile(split..<s)
        let dp0 = (0..<t * (s - split)).map { Float(sin(Double($0))) }, delta: [Float] = [0.3, -0.2, 0.1]
        var dp = dp0
        Kernels.attentionTileBackward(&scores, &dp, rows: t, cols: s - split, ld: s - split, firstVisible: q0 + 1 - split,
                                      scale: scale, logSumExp: lse, delta: delta)
        var backwardWorst = 0.0
        for i in 0..<t {
            for j in split..<s {
                let at = i * (s - split) + j - split
                let p = j < q0 + i + 1 ? exp(Double(raw[i * s + j] * scale) - Double(lse[i])) : 0
                let ds = p * (Double(dp0[at]) - Double(delta[i])) * Double(scale)
                backwardWorst = max(backwardWorst, abs(Double(scores[at]) - p), abs(Double(dp[at]) - ds))
            }
        }
        assertPinned("kernel.attention", backwardWorst, within: Tolerance.attentionTile, "backward: p and ds")
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
        assertEqualElements(back, values)
        Kernels.f32ToBF16(values.map { $0 == 65504 ? 65536 : $0 }, &half, values.count)
        Kernels.bf16ToF32(half, &back, values.count)
        assertEqualElements(back, values.map { $0 == 65504 ? 65536 : $0 })
    }
}
