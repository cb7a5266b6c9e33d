// --compute bf16's products (oneDNN, AVX512-BF16 or AMX) against what they promise: the Float32-accumulated product
// of the bf16-rounded activation and weight. The gap to that is summation order only (Float32 accumulation, blocked
// differently by oneDNN); the gap to the Float32 product is bf16's rounding, stated here as measured. Skipped, saying
// why, where the CPU has no bf16 units or oneDNN is absent.
import Tensor
import TestSupport
import XCTest

final class BF16GemmTests: XCTestCase {
    override func setUpWithError() throws {
        do { try ComputePrecision.bf16.checkAvailable() } catch { throw Fixtures.skip("bf16 compute unavailable: \(error)") }
    }

    /// Values rounded to bf16 (nearest even), back in Float32.
    func rounded(_ t: Tensor) -> Tensor {
        let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: t.count)
        defer { halves.deallocate() }
        let out = Tensor(zeros: t.shape)
        Kernels.f32ToBF16(t.data, halves, t.count)
        Kernels.bf16ToF32(halves, out.data, t.count)
        return out
    }

    /// Values in [-1, 1) from a linear congruential sequence (no generator type outside Tensor needed).
    func random(_ shape: [Int], _ state: inout UInt64) -> Tensor {
        Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 23) - 1
        })
    }

    func testBF16ProductsAreTheFloat32AccumulatedProductsOfTheRoundedValues() {
        var worstOrder = 0.0, worstRounding = 0.0
        for (n, O, I) in [(67, 1030, 77), (130, 45, 2051), (256, 576, 1536), (33, 64, 64)] {
            var rng = UInt64(n * O + I)
            let w = random([O, I], &rng), x = random([n, I], &rng), dy = random([n, O], &rng)
            let (wr, xr, dyr) = (rounded(w), rounded(x), rounded(dy))
            // Reference: Double sums of the rounded values; and the Float32 product of the unrounded ones.
            let yRef = Tensor(zeros: [n, O]), dxRef = Tensor(shape: [n, I], repeating: 0.5)
            Gemm.naive(transA: false, transB: true, m: n, n: O, k: I, a: xr.data, lda: I, b: wr.data, ldb: I, c: yRef.data, ldc: O)
            Gemm.naive(transA: false, transB: false, m: n, n: I, k: O, a: dyr.data, lda: O, b: wr.data, ldb: I, beta: 1,
                       c: dxRef.data, ldc: I)
            let yF32 = Tensor(zeros: [n, O])
            Gemm.linear(x.data, rows: n, weight: Weight(w), into: yF32.data, parallelism: .serial)
            // The weight Float32 and stored as bf16: both round to the same bf16 values.
            let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: O * I)
            defer { halves.deallocate() }
            Kernels.f32ToBF16(w.data, halves, O * I)
            for weight in [Weight(w), Weight(halves: halves, element: .bf16, shape: [O, I], owner: w)] {
                weight.multiplyInBF16()
                for threads in [1, 2] {
                    let p = Parallelism(threads: threads)
                    let y = Tensor(zeros: [n, O]), dx = Tensor(shape: [n, I], repeating: 0.5)
                    Gemm.linear(x.data, rows: n, weight: weight, into: y.data, parallelism: p)
                    Gemm.linearInputGradient(dy.data, rows: n, weight: weight, into: dx.data, beta: 1, parallelism: p)
                    let order = max(Double(y.maxAbsDifference(yRef)) / Double(yRef.maxAbs),
                                    Double(dx.maxAbsDifference(dxRef)) / Double(dxRef.maxAbs))
                    worstOrder = max(worstOrder, order)
                    worstRounding = max(worstRounding, Double(y.maxAbsDifference(yF32)) / Double(yF32.maxAbs))
                }
            }
        }
        assertPinned("bf16GemmSummationOrder", worstOrder, within: Tolerance.bf16GemmSummationOrder)
        assertPinned("bf16GemmRounding", worstRounding, within: Tolerance.bf16GemmRounding)
    }

    /// Decoding's few-row products keep the Float32 matrix–vector kernels; the bf16 path starts above them.
    func testFewRowsStayFloat32() {
        var rng: UInt64 = 5
        let (O, I) = (96, 80)
        let w = random([O, I], &rng), x = random([MatrixVector.maxRows, I], &rng)
        let bf16 = Weight(w)
        bf16.multiplyInBF16()
        let (a, b) = (Tensor(zeros: [MatrixVector.maxRows, O]), Tensor(zeros: [MatrixVector.maxRows, O]))
        Gemm.linear(x.data, rows: MatrixVector.maxRows, weight: Weight(w), into: a.data, parallelism: .serial)
        Gemm.linear(x.data, rows: MatrixVector.maxRows, weight: bf16, into: b.data, parallelism: .serial)
        XCTAssertEqual(a.maxAbsDifference(b), 0)
    }

    /// One packed copy per direction, made on first use and reused by other row counts of the same layout.
    func testPackedCopiesAreMadeOncePerDirection() {
        var rng: UInt64 = 6
        let (O, I) = (128, 96)
        let w = Weight(random([O, I], &rng))
        w.multiplyInBF16()
        XCTAssertEqual(w.bf16Packs?.byteCount, 0)
        let x = random([64, I], &rng), y = Tensor(zeros: [64, O])
        Gemm.linear(x.data, rows: 64, weight: w, into: y.data, parallelism: .serial)
        let one = w.bf16Packs?.byteCount ?? 0
        XCTAssertGreaterThanOrEqual(one, 2 * O * I)
        Gemm.linear(x.data, rows: 64, weight: w, into: y.data, parallelism: .serial)
        XCTAssertEqual(w.bf16Packs?.byteCount, one, "the same shape reuses its copy")
        let dx = Tensor(zeros: [64, I])
        Gemm.linearInputGradient(y.data, rows: 64, weight: w, into: dx.data, parallelism: .serial)
        XCTAssertGreaterThanOrEqual(w.bf16Packs?.byteCount ?? 0, 2 * one - 64 * 64, "the backward direction has its own copy")
    }
}
