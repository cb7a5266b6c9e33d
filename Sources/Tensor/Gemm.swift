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
