// Decoding's kernels, every variant this CPU runs: matrix–vector products with f32, bf16 and f16 weights against
// the Double product of the same values, and row independence by construction (a row of an M-row call, any
// output range, equals the row alone, bit for bit); the fused argmax against the written products; attention of
// one query against softmax attention in Double; Gemm.linear's small-M route against sgemm; a 16-bit weight gives
// what its Float32 values give, bit for bit.
import CKernels
import Foundation
import Tensor
import TestSupport
import XCTest

/// One variant's product and argmax as pk_matvec / pk_matvec_argmax compose them: prepare x, then the product.
private extension pk_kernel_table {
    func matvec(_ x: UnsafePointer<Float>, _ ldx: Int, _ m: Int, _ w: UnsafeRawPointer, _ element: Int32, _ ldw: Int, _ k: Int,
                _ o0: Int, _ o1: Int, _ y: UnsafeMutablePointer<Float>, _ ldy: Int, _ alpha: Float, _ accumulate: Int32) {
        guard let xd = matvec_prepare(x, ldx, m, k) else { return XCTFail("no scratch for the prepared input") }
        matvec_prepared(xd, m, w, element, ldw, k, o0, o1, y, ldy, alpha, accumulate)
    }

    func matvec_argmax(_ x: UnsafePointer<Float>, _ ldx: Int, _ m: Int, _ w: UnsafeRawPointer, _ element: Int32, _ ldw: Int,
                       _ k: Int, _ o0: Int, _ o1: Int, _ value: UnsafeMutablePointer<Float>, _ index: UnsafeMutablePointer<Int32>,
                       _ bad: UnsafeMutablePointer<Int32>) {
        guard let xd = matvec_prepare(x, ldx, m, k) else { return XCTFail("no scratch for the prepared input") }
        matvec_argmax_prepared(xd, m, w, element, ldw, k, o0, o1, value, index, bad)
    }
}

final class MatrixVectorTests: XCTestCase {
    private var tables: [pk_kernel_table] {
        [Int32(PK_ISA_SCALAR), Int32(PK_ISA_AVX2), Int32(PK_ISA_AVX512)].compactMap { pk_kernels_for($0)?.pointee }
    }

    private func data(_ n: Int, _ seed: Double, scale: Float = 1) -> [Float] {
        (0..<n).map { Float(sin(Double($0) * 0.731 + seed)) * scale }
    }

    /// Weights (O, K) stored as `element`, and their Float32 values.
    private func weights(_ o: Int, _ k: Int, _ element: Int32) -> (stored: [UInt8], values: [Float]) {
        let f = data(o * k, 0.3, scale: 0.5)
        switch element {
        case Int32(PK_ELEMENT_BF16):
            var h = [UInt16](repeating: 0, count: f.count), v = f
            pk_f32_to_bf16(f, &h, f.count); pk_bf16_to_f32(h, &v, f.count)
            return (h.withUnsafeBytes { Array($0) }, v)
        case Int32(PK_ELEMENT_F16):
            var h = [UInt16](repeating: 0, count: f.count), v = f
            pk_f32_to_f16(f, &h, f.count); pk_f16_to_f32(h, &v, f.count)
            return (h.withUnsafeBytes { Array($0) }, v)
        default:
            return (f.withUnsafeBytes { Array($0) }, f)
        }
    }

    func testProductsMatchDoubleAndEachRowIsComputedAsAlone() {
        var worst = 0.0
        for t in tables {
            let name = String(cString: t.name)
            for element in [Int32(PK_ELEMENT_F32), Int32(PK_ELEMENT_BF16), Int32(PK_ELEMENT_F16)] {
                for (O, K) in [(37, 45), (130, 577), (9, 16)] {
                    let (stored, w) = weights(O, K, element)
                    for m in [1, 3, 5, 16] {
                        let x = data(m * K, 1.7 + Double(m))
                        var y = [Float](repeating: 0, count: m * O)
                        stored.withUnsafeBytes { t.matvec(x, K, m, $0.baseAddress!, element, K, K, 0, O, &y, O, 1, 0) }
                        var top = 0.0, err = 0.0
                        for i in 0..<m {
                            for o in 0..<O {
                                var s = 0.0
                                for p in 0..<K { s += Double(x[i * K + p]) * Double(w[o * K + p]) }
                                top = max(top, abs(s)); err = max(err, abs(s - Double(y[i * O + o])))
                            }
                        }
                        worst = max(worst, err / top)
                        // Every element type sums alike: the Float32 weights of the same values give the same bits.
                        var viaF32 = [Float](repeating: 0, count: m * O)
                        t.matvec(x, K, m, w, Int32(PK_ELEMENT_F32), K, K, 0, O, &viaF32, O, 1, 0)
                        assertEqualElements(viaF32, y, "\(name) element \(element) \(O)×\(K) M=\(m) against its Float32 values")
                        // Row i alone, and the outputs in ragged ranges, give the same bits.
                        for i in [0, m - 1] {
                            var alone = [Float](repeating: 0, count: O)
                            stored.withUnsafeBytes {
                                t.matvec(Array(x[(i * K)..<((i + 1) * K)]), K, 1, $0.baseAddress!, element, K, K, 0, O, &alone, O, 1, 0)
                            }
                            assertEqualElements(alone, Array(y[(i * O)..<((i + 1) * O)]), "\(name) element \(element) \(O)×\(K) row \(i) of \(m)")
                        }
                        var pieces = [Float](repeating: 0, count: m * O)
                        for (lo, hi) in [(0, min(5, O)), (min(5, O), O / 2), (O / 2, O)] where lo < hi {
                            stored.withUnsafeBytes { t.matvec(x, K, m, $0.baseAddress!, element, K, K, lo, hi, &pieces, O, 1, 0) }
                        }
                        assertEqualElements(pieces, y, "\(name) element \(element) \(O)×\(K) M=\(m) in output ranges")
                        // Accumulating adds alpha · product to what is there.
                        var acc = [Float](repeating: 0.25, count: m * O)
                        stored.withUnsafeBytes { t.matvec(x, K, m, $0.baseAddress!, element, K, K, 0, O, &acc, O, 2, 1) }
                        assertEqualElements(acc, y.map { 2 * $0 + 0.25 }, "\(name) accumulate")
                        // The fused argmax picks the written products' first largest.
                        var value = [Float](repeating: 0, count: m), index = [Int32](repeating: 0, count: m), bad = index
                        stored.withUnsafeBytes { t.matvec_argmax(x, K, m, $0.baseAddress!, element, K, K, 0, O, &value, &index, &bad) }
                        for i in 0..<m {
                            let row = Array(y[(i * O)..<((i + 1) * O)])
                            let expected = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!
                            XCTAssertEqual(Int(index[i]), expected, "\(name) argmax row \(i)")
                            XCTAssertEqual(value[i], row[expected])
                            XCTAssertEqual(bad[i], -1)
                        }
                    }
                }
            }
        }
        assertPinned("kernel.matvec", worst, within: Tolerance.matrixVector, "f32/bf16/f16 weights, every variant")
    }

    func testArgmaxSkipsAndReportsNonFiniteProducts() {
        for t in tables {
            let O = 200, K = 33
            var w = data(O * K, 0.9)
            w[7 * K + 3] = .nan
            w[150 * K] = .infinity
            let x = data(K, 0.1).map { abs($0) + 0.01 }
            var y = [Float](repeating: 0, count: O)
            t.matvec(x, K, 1, w, Int32(PK_ELEMENT_F32), K, K, 0, O, &y, O, 1, 0)
            var value: Float = 0, index: Int32 = 0, bad: Int32 = 0
            t.matvec_argmax(x, K, 1, w, Int32(PK_ELEMENT_F32), K, K, 0, O, &value, &index, &bad)
            XCTAssertEqual(bad, 7, String(cString: t.name))
            let finite = y.indices.filter { y[$0].isFinite }
            XCTAssertEqual(Int(index), finite.max { y[$0] < y[$1] || (y[$0] == y[$1] && $0 > $1) }!)
        }
    }

    func testAttentionOfOneQueryMatchesSoftmaxInDouble() {
        var worst = 0.0
        for t in tables {
            for (s, d) in [(1, 64), (37, 64), (300, 19), (16, 128), (37, 80), (2, 40)] {
                let ld = d + 5
                let q = data(d, 0.2, scale: 2), k = data(s * ld, 1.1, scale: 2), v = data(s * ld, 2.3)
                var scores = [Float](repeating: 0, count: s), out = [Float](repeating: 0, count: d)
                let scale = Float(1 / Double(d).squareRoot())
                t.attention_query(q, k, v, ld, s, d, scale, &scores, &out)
                var logits = (0..<s).map { j in (0..<d).reduce(0.0) { $0 + Double(q[$1]) * Double(k[j * ld + $1]) } * Double(scale) }
                let mx = logits.max()!
                logits = logits.map { exp($0 - mx) }
                let sum = logits.reduce(0, +)
                var top = 0.0, err = 0.0
                for p in 0..<d {
                    let e = (0..<s).reduce(0.0) { $0 + logits[$1] * Double(v[$1 * ld + p]) } / sum
                    top = max(top, abs(e)); err = max(err, abs(e - Double(out[p])))
                }
                worst = max(worst, err / top)
            }
        }
        assertPinned("kernel.attention_query", worst, within: Tolerance.attentionQuery, "every variant, D = 19…128")
    }

    func testGemmLinearTakesTheSmallRowKernelsWithinTheSgemmBound() {
        // Up to MatrixVector.maxRows rows: the same products as sgemm within float rounding, bit-identical on 1 and 2
        // threads, and a 16-bit weight's exactly the Float32 weight's of the same values.
        let O = 1030, I = 577
        let f = data(O * I, 0.4, scale: 0.3)
        var halves = [UInt16](repeating: 0, count: f.count), widened = f
        pk_f32_to_bf16(f, &halves, f.count); pk_bf16_to_f32(halves, &widened, f.count)
        let full = Weight(Tensor(shape: [O, I], values: widened))
        var worst = 0.0
        halves.withUnsafeBufferPointer { hp in
            let half = Weight(halves: hp.baseAddress!, element: .bf16, shape: [O, I], owner: full)
            for m in [1, 4, 16] {
                let x = data(m * I, 0.8)
                var viaBLAS = [Float](repeating: 0, count: m * O), one = viaBLAS, two = viaBLAS, stored = viaBLAS
                Gemm.multiply(transA: false, transB: true, m: m, n: O, k: I, a: x, lda: I, b: widened, ldb: I, c: &viaBLAS, ldc: O,
                              parallelism: .serial)
                Gemm.linear(x, rows: m, weight: full, into: &one, parallelism: .serial)
                Gemm.linear(x, rows: m, weight: full, into: &two, parallelism: Parallelism(threads: 2))
                Gemm.linear(x, rows: m, weight: half, into: &stored, parallelism: Parallelism(threads: 2))
                assertEqualElements(one, two, "M=\(m): 1 and 2 threads")
                assertEqualElements(one, stored, "M=\(m): bf16 weight and its Float32 values")
                let top = viaBLAS.map { abs(Double($0)) }.max()!
                worst = max(worst, zip(one, viaBLAS).map { abs(Double($0) - Double($1)) }.max()! / top)
            }
        }
        assertPinned("kernel.matvec", worst, within: Tolerance.matrixVector, "Gemm.linear small rows against sgemm")
    }
}
