// Every kernel variant this CPU runs (avx2, avx512) against the scalar one, on lengths that leave tails. Each
// tolerance is about 3× the worst |Δ| / max(1, |scalar|) measured over both variants (the figure beside it).
import CKernels
import Foundation
import Tensor
import TestSupport
import XCTest

final class KernelVariantTests: XCTestCase {
    private var variants: [pk_kernel_table] {
        [Int32(PK_ISA_AVX2), Int32(PK_ISA_AVX512)].compactMap { pk_kernels_for($0)?.pointee }
    }
    private let scalar = pk_kernels_for(Int32(PK_ISA_SCALAR))!.pointee

    private func data(_ n: Int, _ seed: Double, scale: Float = 3) -> [Float] {
        (0..<n).map { Float(sin(Double($0) * 0.37 + seed)) * scale }
    }

    private func assertClose(_ a: [Float], _ b: [Float], rel: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count)
        var worst: Float = 0
        for i in 0..<a.count { worst = max(worst, abs(a[i] - b[i]) / max(1, abs(b[i]))) }
        assertPinned("kernel.variant", Double(worst), within: Double(rel), what, file: file, line: line)
    }

    func testTheBestVariantIsActiveAndPRUNE_KERNELSIsHonoured() {
        let best = KernelVariant.supported.last!
        if ProcessInfo.processInfo.environment["PRUNE_KERNELS"] == nil { XCTAssertEqual(KernelVariant.active, best) }
        XCTAssertEqual(KernelVariant.supported.first, "scalar")
        // The prune binary picks up PRUNE_KERNELS at start.
        for v in KernelVariant.supported {
            guard let r = try? PruneExecutable.run(["--version"], environment: ["PRUNE_KERNELS": v]) else {
                return XCTFail("prune --version did not run")
            }
            XCTAssertTrue(r.stdout.contains("kernels: \(v)"), r.stdout + r.stderr)
        }
    }

    func testElementwiseKernelsMatchScalar() {
        for v in variants {
            let name = String(cString: v.name)
            for n in [1, 7, 16, 37, 1000] {
                let g = data(n, 0.1), u = data(n, 0.7), dh = data(n, 1.3)
                var h1 = [Float](repeating: 0, count: n), h2 = h1
                v.silu_mul(g, u, &h1, n); scalar.silu_mul(g, u, &h2, n)
                assertClose(h1, h2, rel: 3.6e-7, "\(name) silu_mul n=\(n)")   // measured 1.19e-7
                var dg1 = h1, du1 = h1, dg2 = h1, du2 = h1
                v.silu_mul_backward(g, u, dh, &dg1, &du1, n); scalar.silu_mul_backward(g, u, dh, &dg2, &du2, n)
                assertClose(dg1, dg2, rel: 1e-6, "\(name) silu backward dg n=\(n)")   // 3.36e-7
                assertClose(du1, du2, rel: 3.6e-7, "\(name) silu backward du n=\(n)")   // 1.14e-7
                var y1 = g, y2 = g
                v.add_inplace(&y1, u, n); scalar.add_inplace(&y2, u, n)
                assertEqualElements(y1, y2, "\(name) add_inplace n=\(n)")
                // half conversions are exact operations: bit-identical
                var hb1 = [UInt16](repeating: 0, count: n), hb2 = hb1
                let wide = g.map { $0 * 1000 } + []
                v.f32_to_f16(wide, &hb1, n); scalar.f32_to_f16(wide, &hb2, n)
                assertEqualElements(hb1, hb2, "\(name) f32→f16")
                var f1 = [Float](repeating: 0, count: n), f2 = f1
                v.f16_to_f32(hb1, &f1, n); scalar.f16_to_f32(hb1, &f2, n)
                assertEqualElements(f1, f2, "\(name) f16→f32")
                v.f32_to_bf16(g, &hb1, n); scalar.f32_to_bf16(g, &hb2, n)
                assertEqualElements(hb1, hb2, "\(name) f32→bf16")
            }
        }
    }

    func testStreamReadReadsEveryElement() {
        // Multiples of 1/1024 below 1 in a few thousand elements sum exactly in any order: every variant, every tail.
        for v in variants + [scalar] {
            for n in [0, 1, 15, 64, 1000, 4099] {
                let x = (0..<n).map { Float(($0 * 37) & 1023) * 0x1p-10 }
                let exact = x.reduce(0, +)
                XCTAssertEqual(v.stream_read(x, n), exact, "\(String(cString: v.name)) stream_read n=\(n)")
            }
        }
    }

    func testHalfConversionHandlesSubnormalsInfinityAndNaN() {
        let values: [Float] = [0, -0, 5.96e-8, 2.98e-8, 6.1e-5, 65504, 65520, -1e9, .infinity, 1e-3, 3.1415927]
        var h = [UInt16](repeating: 0, count: values.count), back = [Float](repeating: 0, count: values.count)
        scalar.f32_to_f16(values, &h, values.count)
        scalar.f16_to_f32(h, &back, values.count)
        XCTAssertEqual(back[2], 5.9604645e-8)              // the smallest subnormal
        XCTAssertEqual(back[3], 0)                         // half of it rounds to even (zero)
        XCTAssertEqual(back[5], 65504)
        XCTAssertEqual(back[6], .infinity)                 // 65520 rounds up past the largest half
        XCTAssertEqual(back[7], -.infinity)
        XCTAssertEqual(back[9], 0.0010004044, accuracy: 1e-10)
        var nan: [Float] = [.nan], hn: [UInt16] = [0], bn: [Float] = [0]
        scalar.f32_to_f16(&nan, &hn, 1); scalar.f16_to_f32(hn, &bn, 1)
        XCTAssertTrue(bn[0].isNaN)
    }

    func testNormRopeSoftmaxAndCrossEntropyMatchScalar() {
        for v in variants {
            let name = String(cString: v.name)
            let rows = 3, cols = 45
            let x = data(rows * cols, 0.2), w = data(cols, 0.9, scale: 1), dy = data(rows * cols, 2.1)
            var y1 = [Float](repeating: 0, count: rows * cols), y2 = y1, r1 = [Float](repeating: 0, count: rows), r2 = r1
            v.rmsnorm_forward(x, w, &y1, &r1, rows, cols, 1e-5); scalar.rmsnorm_forward(x, w, &y2, &r2, rows, cols, 1e-5)
            assertClose(y1, y2, rel: 2.4e-7, "\(name) rmsnorm")   // 0; two ulps
            var dx1 = y1, dx2 = y1, dw1 = [Float](repeating: 0, count: cols), dw2 = dw1
            v.rmsnorm_backward(x, w, r1, dy, &dx1, &dw1, rows, cols, 0); scalar.rmsnorm_backward(x, w, r1, dy, &dx2, &dw2, rows, cols, 0)
            assertClose(dx1, dx2, rel: 3.6e-7, "\(name) rmsnorm backward dx")   // 1.19e-7
            assertClose(dw1, dw2, rel: 3.6e-7, "\(name) rmsnorm backward dw")   // 1.17e-7
            let vocab = 1003
            let logits = data(vocab, 0.05, scale: 8)
            var g1 = [Float](repeating: 0, count: vocab), g2 = g1
            let l1 = v.cross_entropy_row(logits, vocab, 17, &g1, 0.5), l2 = scalar.cross_entropy_row(logits, vocab, 17, &g2, 0.5)
            XCTAssertEqual(l1, l2, accuracy: 1e-6 * abs(l2), "\(name) cross-entropy loss")
            assertClose(g1, g2, rel: 7e-10, "\(name) cross-entropy gradient")   // 2.33e-10
            XCTAssertEqual(l2, pk_cross_entropy_row(logits, vocab, 17, nil, 1), accuracy: 1e-6 * abs(l2))
            let teacher = data(vocab, 0.6, scale: 6)
            var parts1 = [0.0, 0.0], parts2 = parts1
            let d1 = v.distill_row(logits, teacher, vocab, 17, 0.5, 2, &g1, 0.5, &parts1)
            let d2 = scalar.distill_row(logits, teacher, vocab, 17, 0.5, 2, &g2, 0.5, &parts2)
            XCTAssertEqual(d1, d2, accuracy: 1e-6 * abs(d2), "\(name) distillation loss")
            XCTAssertEqual(parts1[1], parts2[1], accuracy: 1e-6 * abs(parts2[1]), "\(name) distillation KL")
            assertClose(g1, g2, rel: 7e-10, "\(name) distillation gradient")   // 2.33e-10
        }
    }

    func testAttentionTileKernelsMatchScalar() {
        for v in variants {
            let name = String(cString: v.name)
            // Two key tiles of one query block (5 rows, 37 of 40 columns): the second's rows see 30…34 keys, the
            // first's from none (first_visible −2) to all, so that vector tails, empty rows and rescaling all run.
            let rows = 5, cols = 37, ld = 40, dim = 19
            var m1 = [Float](repeating: -.infinity, count: rows), l1 = [Float](repeating: 0, count: rows), m2 = m1, l2 = l1
            var acc1 = data(rows * dim, 0.6), acc2 = acc1
            for (tile, firstVisible) in [(0, 30), (1, -2)] {
                var s1 = data(rows * ld, 0.4 + Double(tile), scale: 9), s2 = s1
                let first = tile == 0
                acc1.withUnsafeMutableBufferPointer { a1 in
                    acc2.withUnsafeMutableBufferPointer { a2 in
                        v.attention_block_softmax(&s1, rows, cols, ld, firstVisible, 0.3, &m1, &l1, first ? nil : a1.baseAddress, dim, dim)
                        scalar.attention_block_softmax(&s2, rows, cols, ld, firstVisible, 0.3, &m2, &l2, first ? nil : a2.baseAddress, dim, dim)
                    }
                }
                assertClose(s1, s2, rel: 2.5e-8, "\(name) attention tile softmax p, tile \(tile)")   // 7.45e-9
            }
            assertEqualElements(m1, m2, "\(name) attention tile softmax running max")
            assertClose(l1, l2, rel: 6.5e-7, "\(name) attention tile softmax running sum")   // 2.17e-7
            assertClose(acc1, acc2, rel: 1.2e-7, "\(name) attention tile softmax rescaled accumulator")   // 0; one ulp
            let lse = data(rows, 1.9, scale: 2).map { $0 + 4 }, delta = data(rows, 2.3)
            var s1 = data(rows * ld, 0.8, scale: 9), s2 = s1, d1 = data(rows * ld, 1.2), d2 = d1
            v.attention_block_backward(&s1, &d1, rows, cols, ld, 33, 0.3, lse, delta)
            scalar.attention_block_backward(&s2, &d2, rows, cols, ld, 33, 0.3, lse, delta)
            assertClose(s1, s2, rel: 1e-7, "\(name) attention tile backward p")   // 2.98e-8
            assertClose(d1, d2, rel: 1.8e-7, "\(name) attention tile backward ds")   // 5.96e-8
            let a = data(rows * ld, 2.7), b = data(rows * 50, 3.1)
            var dot1 = [Float](repeating: 0, count: rows), dot2 = dot1
            v.row_dot(a, ld, b, 50, rows, cols, &dot1); scalar.row_dot(a, ld, b, 50, rows, cols, &dot2)
            assertClose(dot1, dot2, rel: 3.6e-7, "\(name) row dot")   // 1.19e-7
        }
    }

    func testSkinnyProductsMatchScalar() {
        for v in variants {
            let name = String(cString: v.name)
            for r in [4, 8, 11] {
                let n = 5, k = 53
                let x = data(n * k, 0.3), a = data(r * k, 0.8, scale: 0.5), c = data(n * r, 1.7)
                var h1 = [Float](repeating: 0, count: n * r), h2 = h1
                v.skinny_nt(x, k, a, r, k, &h1, r, n, 0.7); scalar.skinny_nt(x, k, a, r, k, &h2, r, n, 0.7)
                assertClose(h1, h2, rel: 1e-6, "\(name) skinny_nt r=\(r)")   // 3.28e-7
                var y1 = data(n * k, 2.2), y2 = y1
                v.skinny_nn_acc(c, r, r, a, k, &y1, k, n, 0.7); scalar.skinny_nn_acc(c, r, r, a, k, &y2, k, n, 0.7)
                assertClose(y1, y2, rel: 1.6e-6, "\(name) skinny_nn_acc r=\(r)")   // 5.36e-7
                var g1 = data(r * k, 2.9), g2 = g1
                v.skinny_tn_acc(c, r, r, x, k, k, &g1, k, n, 0.7); scalar.skinny_tn_acc(c, r, r, x, k, k, &g2, k, n, 0.7)
                assertClose(g1, g2, rel: 2.4e-6, "\(name) skinny_tn_acc r=\(r)")   // 7.91e-7
            }
        }
    }

    func testOpenBLASRunsTheKernelSetThisCPUDeserves() throws {
        let info = try BLASRuntime.load()
        if let best = CPUInfo.current.bestOpenBLASCore, ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil {
            XCTAssertEqual(info.coreName, best, info.choice)
        }
        // the variable we set for the load is gone again, so children (PyTorch) do not inherit it
        if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil { XCTAssertNil(getenv("OPENBLAS_CORETYPE")) }
    }
}
