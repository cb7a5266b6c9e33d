// Products of a few rows with a weight, as decoding makes them (one new token, or a verification pass of K+1):
// bound by reading the weight, which sgemm would pack and the 16-bit path widen block by block into scratch.
// Our kernels (pk_matvec in CKernels) read each weight row once for all rows and widen 16-bit elements inside
// the dot product. Threads split the outputs; each element is one dot product summed in one order whatever the
// rows beside it, the split or the thread count (kernels_decode.h), so a row of a K+1-row pass equals the
// one-row step, and the greedy head can keep only each row's argmax instead of writing V logits. The threads
// are a WorkerPool's: a product lasts microseconds.
// Dimension glossary: M rows (≤ maxRows), I in features, O outputs.
import CKernels

/// y (M, O) = x (M, I) · Wᵀ for M ≤ `maxRows`, and its argmax per row.
public enum MatrixVector {
    /// Rows one call takes; beyond, sgemm's blocking is faster and `Gemm.linear` takes it.
    public static let maxRows = Int(PK_MATVEC_MAX_ROWS)

    /// A row's largest product and where it is.
    public struct Best: Sendable, Equatable {
        public var value: Float
        /// The lowest output index with that value.
        public var index: Int
        /// The first output whose product is not finite, if any (then `value`/`index` describe the finite ones).
        public var firstNonFinite: Int?
        public init(value: Float, index: Int, firstNonFinite: Int?) {
            self.value = value
            self.index = index
            self.firstNonFinite = firstNonFinite
        }
    }

    /// y (M, O) = alpha · x (M, I) · Wᵀ (+ y when `accumulate`), for any stored element type of W.
    public static func linear(_ x: UnsafePointer<Float>, rows m: Int, weight: Weight, into y: UnsafeMutablePointer<Float>,
                              alpha: Float = 1, accumulate: Bool = false, parallelism: Parallelism) {
        precondition(m >= 1 && m <= maxRows, "MatrixVector takes 1…\(maxRows) rows, got \(m)")
        let O = weight.rows, I = weight.columns, element = code(weight.element)
        let base = weight.elementBase
        let parts = partCount(weight, parallelism: parallelism)
        withExtendedLifetime(weight) {
            if parts == 1 {
                pk_matvec(x, I, m, base, element, I, I, 0, O, y, O, alpha, accumulate ? 1 : 0)
                return
            }
            WorkerPool.shared(parallelism).run(parts: parts) { w in
                let r = outputs(w, of: parts, O)
                pk_matvec(x, I, m, base, element, I, I, r.lowerBound, r.upperBound, y, O, alpha, accumulate ? 1 : 0)
            }
        }
    }

    /// Each row's largest x_i · w_o (the lowest o among equals) into best (M), from the same products `linear`
    /// computes, without writing them out.
    public static func argmax(_ x: UnsafePointer<Float>, rows m: Int, weight: Weight, into best: UnsafeMutablePointer<Best>,
                              parallelism: Parallelism) {
        precondition(m >= 1 && m <= maxRows, "MatrixVector takes 1…\(maxRows) rows, got \(m)")
        let O = weight.rows, I = weight.columns, element = code(weight.element)
        let base = weight.elementBase
        let parts = partCount(weight, parallelism: parallelism)
        // Per part and row: best value, its index, first non-finite index (on the stack: no allocation per step).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: parts * m) { values in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * parts * m) { indices in
                let (uv, ui, ux) = (values.baseAddress!, indices.baseAddress!, UnsafeMutablePointer(mutating: x))
                let run = { (w: Int) in
                    let r = outputs(w, of: parts, O)
                    pk_matvec_argmax(ux, I, m, base, element, I, I, r.lowerBound, r.upperBound, uv + w * m, ui + w * m,
                                     ui + (parts + w) * m)
                }
                withExtendedLifetime(weight) { WorkerPool.shared(parallelism).run(parts: parts, run) }
                // Parts cover ascending outputs: a later part wins only with a strictly larger value.
                for i in 0..<m {
                    var b = Best(value: -.infinity, index: -1, firstNonFinite: nil)
                    for w in 0..<parts {
                        let index = Int(ui[w * m + i]), value = uv[w * m + i], bad = Int(ui[(parts + w) * m + i])
                        if index >= 0 && (b.index < 0 || value > b.value) { b.value = value; b.index = index }
                        if bad >= 0 && b.firstNonFinite == nil { b.firstNonFinite = bad }
                    }
                    best[i] = b
                }
            }
        }
    }

    private static func code(_ e: WeightElement) -> Int32 {
        switch e {
        case .f32: Int32(PK_ELEMENT_F32)
        case .bf16: Int32(PK_ELEMENT_BF16)
        case .f16: Int32(PK_ELEMENT_F16)
        }
    }

    /// Threads for one product: each must read at least ~64 KB of weight, or the hand-over costs more than it saves.
    private static func partCount(_ weight: Weight, parallelism: Parallelism) -> Int {
        let perThread = 1 << 16
        return max(1, min(parallelism.threads, weight.byteCount / perThread, weight.rows / 16))
    }

    /// Part w of `parts` contiguous output ranges of 0..<O, boundaries at multiples of 16.
    private static func outputs(_ w: Int, of parts: Int, _ O: Int) -> Range<Int> {
        let blocks = (O + 15) / 16
        return min(O, blocks * w / parts * 16)..<min(O, blocks * (w + 1) / parts * 16)
    }
}
