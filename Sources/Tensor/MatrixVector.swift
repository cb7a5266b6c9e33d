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
        linear(x, rows: m, (weight, y), alpha: alpha, accumulate: accumulate, parallelism: parallelism)
    }

    /// Up to three products of the same x (q, k, v; gate, up) in one parallel region: y_j (M, O_j) = alpha · x·W_jᵀ
    /// (+ y_j when `accumulate`). Every W_j has I columns.
    public static func linear(_ x: UnsafePointer<Float>, rows m: Int, _ first: (Weight, UnsafeMutablePointer<Float>),
                              _ second: (Weight, UnsafeMutablePointer<Float>)? = nil, _ third: (Weight, UnsafeMutablePointer<Float>)? = nil,
                              alpha: Float = 1, accumulate: Bool = false, parallelism: Parallelism) {
        precondition(m >= 1 && m <= maxRows, "MatrixVector takes 1…\(maxRows) rows, got \(m)")
        let I = first.0.columns
        var plan = Plan(parallelism: parallelism)
        plan.add(first.0)
        if let (w, _) = second { plan.add(w, columns: I) }
        if let (w, _) = third { plan.add(w, columns: I) }
        let acc: Int32 = accumulate ? 1 : 0
        let xd = prepared(x, rows: m, columns: I)
        withExtendedLifetime((first, second, third)) {
            plan.run(parallelism) { j, r in
                guard let (w, y) = j == 0 ? first : j == 1 ? second : third else { return }
                pk_matvec_prepared(xd, m, w.elementBase, code(w.element), I, I, r.lowerBound, r.upperBound, y, w.rows, alpha, acc)
            }
        }
    }

    /// Each row's largest x_i · w_o (the lowest o among equals) into best (M), from the same products `linear`
    /// computes, without writing them out.
    public static func argmax(_ x: UnsafePointer<Float>, rows m: Int, weight: Weight, into best: UnsafeMutablePointer<Best>,
                              parallelism: Parallelism) {
        precondition(m >= 1 && m <= maxRows, "MatrixVector takes 1…\(maxRows) rows, got \(m)")
        let I = weight.columns, element = code(weight.element), base = weight.elementBase
        var plan = Plan(parallelism: parallelism)
        plan.add(weight)
        let chunks = plan.chunks, chunkRows = plan.chunkRows
        let xd = prepared(x, rows: m, columns: I)
        // Per chunk and row: best value, its index, first non-finite index (on the stack: no allocation per step).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunks * m) { values in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * chunks * m) { indices in
                let (uv, ui) = (values.baseAddress!, indices.baseAddress!)
                withExtendedLifetime(weight) {
                    plan.run(parallelism) { _, r in
                        let c = r.lowerBound / chunkRows
                        pk_matvec_argmax_prepared(xd, m, base, element, I, I, r.lowerBound, r.upperBound, uv + c * m,
                                                  ui + c * m, ui + (chunks + c) * m)
                    }
                }
                // Chunks cover ascending outputs: a later one wins only with a strictly larger value.
                for i in 0..<m {
                    var b = Best(value: -.infinity, index: -1, firstNonFinite: nil)
                    for c in 0..<chunks {
                        let index = Int(ui[c * m + i]), value = uv[c * m + i], bad = Int(ui[(chunks + c) * m + i])
                        if index >= 0 && (b.index < 0 || value > b.value) { b.value = value; b.index = index }
                        if bad >= 0 && b.firstNonFinite == nil { b.firstNonFinite = bad }
                    }
                    best[i] = b
                }
            }
        }
    }

    /// How the outputs of up to three weights are cut into chunks that the pool's threads take as they finish: about
    /// eight per thread (so that a thread that reads memory slower takes fewer), each a multiple of 16 rows and at
    /// least ~32 KB of weight; one chunk when the product is too small to share.
    private struct Plan {
        var rows: (Int, Int, Int) = (0, 0, 0)
        var count = 0
        var bytes = 0
        let threads: Int
        init(parallelism: Parallelism) { threads = parallelism.threads }

        mutating func add(_ w: Weight, columns: Int? = nil) {
            precondition(columns.map { $0 == w.columns } ?? true, "products sharing an input need the same in features")
            switch count {
            case 0: rows.0 = w.rows
            case 1: rows.1 = w.rows
            default: rows.2 = w.rows
            }
            count += 1
            bytes += w.byteCount
        }

        private var total: Int { rows.0 + rows.1 + rows.2 }
        private func rowsOf(_ j: Int) -> Int { j == 0 ? rows.0 : j == 1 ? rows.1 : rows.2 }

        /// Output rows per chunk.
        var chunkRows: Int {
            let shared = threads > 1 && bytes >= 2 * (1 << 16)
            guard shared, total > 0 else { return max(total, 1) }
            let perRowBytes = max(1, bytes / total)
            let byCount = (total + threads * 8 - 1) / (threads * 8)
            let byBytes = (1 << 15) / perRowBytes
            return max(16, (max(byCount, byBytes) + 15) / 16 * 16)
        }

        /// Chunks of the first weight (argmax takes one weight).
        var chunks: Int { (rowsOf(0) + chunkRows - 1) / chunkRows }

        /// body(weight j, its output rows) for every chunk.
        func run(_ parallelism: Parallelism, _ body: (Int, Range<Int>) -> Void) {
            let size = chunkRows
            let c0 = (rows.0 + size - 1) / size, c1 = (rows.1 + size - 1) / size, c2 = (rows.2 + size - 1) / size
            let all = c0 + (count > 1 ? c1 : 0) + (count > 2 ? c2 : 0)
            func work(_ chunk: Int) {
                var j = 0, local = chunk
                if local >= c0 { j = 1; local -= c0; if local >= c1 { j = 2; local -= c1 } }
                body(j, (local * size)..<min(rowsOf(j), (local + 1) * size))
            }
            if all == 1 { work(0) } else { WorkerPool.shared(parallelism).run(chunks: all) { work($0) } }
        }
    }

    /// x laid out for the kernels once per product, in this thread's buffer, which the pool's threads then read.
    private static func prepared(_ x: UnsafePointer<Float>, rows m: Int, columns k: Int) -> UnsafePointer<Float> {
        guard let xd = pk_matvec_prepare(x, k, m, k) else {
            fatalError("out of memory for a \(m)×\(k) decoding input")   // a few KB, grown once per thread
        }
        return xd
    }

    private static func code(_ e: WeightElement) -> Int32 {
        switch e {
        case .f32: Int32(PK_ELEMENT_F32)
        case .bf16: Int32(PK_ELEMENT_BF16)
        case .f16: Int32(PK_ELEMENT_F16)
        }
    }

}
