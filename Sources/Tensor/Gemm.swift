// General matrix multiply: the only place that calls cblas_sgemm. A naive reference is kept beside it
// for tests.
import Foundation

/// Matrix multiply through OpenBLAS.
public enum Gemm {
    /// C (M, N) = alpha · op(A) · op(B) + beta · C, row-major with leading dimensions.
    /// op(A) is (M, K): A is (M, K) or, transposed, (K, M). op(B) is (K, N): B is (K, N) or (N, K).
    /// Large products are split into `parallelism.threads` column (or row) blocks, each a single-threaded
    /// OpenBLAS call on its own core: OpenBLAS's own threads spin-wait between calls and then contend with our
    /// other parallel loops, which cost up to a quarter of a forward pass.
    public static func multiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
        parallelism: Parallelism
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            else if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
            return
        }
        _ = blas
        let workers = parallelism.threads
        // Below ~4M multiply-adds a thread hop costs more than the halved work saves.
        guard workers > 1, m * n * k >= 1 << 22, max(m, n) >= 2 * 16 else {
            serial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        let splitColumns = n >= m
        let extent = splitColumns ? n : m
        let chunk = ((extent + workers - 1) / workers + 15) / 16 * 16  // multiples of 16 keep kernel blocks whole
        let parts = (extent + chunk - 1) / chunk
        let (ua, ub) = (UnsafeMutablePointer(mutating: a), UnsafeMutablePointer(mutating: b))  // Sendable capture
        DispatchQueue.concurrentPerform(iterations: parts) { w in
            let lo = w * chunk, len = min(chunk, extent - lo)
            if splitColumns {
                serial(transA, transB, m, len, k, alpha, ua, lda, ub + (transB ? lo * ldb : lo), ldb, beta, c + lo, ldc)
            } else {
                serial(transA, transB, len, n, k, alpha, ua + (transA ? lo : lo * lda), lda, ub, ldb, beta, c + lo * ldc, ldc)
            }
        }
    }

    @inline(__always)
    static func serial(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                       _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                       _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        BLASRuntime.sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// OpenBLAS, loaded (single-threaded) before the first product. A process that could not load it stops
    /// here with the reason; commands call `BLASRuntime.load()` first to report it as an error instead.
    static let blas: BLASRuntime.Info = {
        do { return try BLASRuntime.load() } catch { fatalError("\(error)") }
    }()

    /// y (N, out) = x (N, in) · Wᵀ with W stored (out, in), as a PyTorch Linear stores it.
    /// beta = 1 accumulates into y.
    @inlinable
    public static func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                              weight: UnsafePointer<Float>, outFeatures: Int,
                              into y: UnsafeMutablePointer<Float>, alpha: Float = 1, beta: Float = 0,
                              parallelism: Parallelism) {
        multiply(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures, alpha: alpha,
                 a: x, lda: inFeatures, b: weight, ldb: inFeatures, beta: beta, c: y, ldc: outFeatures,
                 parallelism: parallelism)
    }

    /// y (N, O) = alpha · x (N, I) · Wᵀ + beta · y for a weight in any stored element type. Up to
    /// `MatrixVector.maxRows` rows (decoding) take our matrix–vector kernels, which read the weight once as stored.
    /// A weight marked `multiplyInBF16()` takes oneDNN's bf16 product (`BF16Gemm`).
    /// Otherwise a Float32 weight takes `linear` above unchanged; a 16-bit one is widened block by block of O rows
    /// (≈ 2 MB of Float32 each) into a per-worker scratch, each block one single-threaded sgemm writing its columns
    /// of y. Every y element is still one sgemm dot product over all of I, as in the Float32 path, which splits its
    /// columns the same way.
    public static func linear(_ x: UnsafePointer<Float>, rows n: Int, weight: Weight,
                              into y: UnsafeMutablePointer<Float>, alpha: Float = 1, beta: Float = 0,
                              parallelism: Parallelism) {
        let O = weight.rows, I = weight.columns
        if n == 0 || O == 0 { return }
        if n <= MatrixVector.maxRows && I > 0 && (beta == 0 || beta == 1) {
            MatrixVector.linear(x, rows: n, weight: weight, into: y, alpha: alpha, accumulate: beta == 1, parallelism: parallelism)
            return
        }
        if let packs = weight.bf16Packs, alpha == 1, beta == 0 || beta == 1, I > 0 {
            BF16Gemm.linear(x, rows: n, weight: weight, packs: packs, into: y, accumulate: beta == 1, parallelism: parallelism)
            return
        }
        if let w = weight.float32 {
            linear(x, rows: n, inFeatures: I, weight: w.data, outFeatures: O, into: y, alpha: alpha, beta: beta,
                   parallelism: parallelism)
            return
        }
        widened(extent: O, other: I, work: n * O * I, parallelism: parallelism) { lo, len, scratch in
            weight.widenRows(lo, count: len, into: scratch)
            serial(false, true, n, len, I, alpha, x, I, scratch, I, beta, y + lo, O)
        }
    }

    /// dx (N, I) = dy (N, O) · W (+ beta · dx): the input gradient of `linear`, for a weight in any stored element
    /// type. A 16-bit weight is widened block by block of I columns (all O rows of each), so that every dx element
    /// is again one sgemm dot product over all of O.
    public static func linearInputGradient(_ dy: UnsafePointer<Float>, rows n: Int, weight: Weight,
                                           into dx: UnsafeMutablePointer<Float>, beta: Float = 0,
                                           parallelism: Parallelism) {
        let O = weight.rows, I = weight.columns
        if let packs = weight.bf16Packs, n > MatrixVector.maxRows, beta == 0 || beta == 1, n > 0, O > 0, I > 0 {
            BF16Gemm.linearInputGradient(dy, rows: n, weight: weight, packs: packs, into: dx, accumulate: beta == 1,
                                         parallelism: parallelism)
            return
        }
        if let w = weight.float32 {
            multiply(transA: false, transB: false, m: n, n: I, k: O, a: dy, lda: O, b: w.data, ldb: I,
                     beta: beta, c: dx, ldc: I, parallelism: parallelism)
            return
        }
        widened(extent: I, other: O, work: n * O * I, parallelism: parallelism) { lo, len, scratch in
            weight.widenColumns(lo, width: len, into: scratch)
            serial(false, false, n, len, O, 1, dy, O, scratch, len, beta, dx + lo, I)
        }
    }

    /// Splits `extent` (the output columns) into blocks of a multiple of 16 holding ≈ 2 MB of widened weight
    /// (`other` floats per column; the last block takes the remainder), spreads them over the workers in contiguous runs, and calls
    /// `body(first, count, scratch)` for each block with a scratch of count·other floats.
    private static func widened(extent: Int, other: Int, work: Int, parallelism: Parallelism,
                                _ body: @escaping (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        if extent == 0 { return }
        _ = blas
        let workers = work >= 1 << 22 && extent >= 32 ? parallelism.threads : 1
        var block = max(16, min(512, (1 << 19) / max(other, 1)) / 16 * 16)
        let perWorker = ((extent + workers - 1) / workers + 15) / 16 * 16
        block = min(block, perWorker)
        // A ragged tail under 16 columns joins the block before it: OpenBLAS takes its small-matrix kernels (another
        // summation order) for such slivers, where one call over all of `extent` would not.
        var blocks = (extent + block - 1) / block
        if blocks > 1 && extent % block > 0 && extent % block < 16 { blocks -= 1 }
        let parts = min(workers, blocks)
        let run = { (w: Int) in
            let first = blocks * w / parts, last = blocks * (w + 1) / parts
            guard first < last else { return }
            let scratch = WeightScratch.shared.take((block + 15) * other)
            for b in first..<last {
                let lo = b * block
                body(lo, b == blocks - 1 ? extent - lo : block, scratch.0)
            }
            WeightScratch.shared.put(scratch)
        }
        if parts == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: run) }
    }

    /// Reference implementation with the same contract, accumulating in Double. For tests only.
    public static func naive(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                let old = beta == 0 ? 0 : beta * c[i * ldc + j]
                c[i * ldc + j] = alpha * Float(s) + old
            }
        }
    }
}
