// General matrix multiply: the only place that calls cblas_sgemm. A naive reference is kept beside it
// for tests.
import CBLAS

/// Matrix multiply through OpenBLAS.
public enum Gemm {
    /// C (M, N) = alpha · op(A) · op(B) + beta · C, row-major with leading dimensions.
    /// op(A) is (M, K): A is (M, K) or, transposed, (K, M). op(B) is (K, N): B is (K, N) or (N, K).
    @inlinable
    public static func multiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y (N, out) = x (N, in) · Wᵀ with W stored (out, in), as a PyTorch Linear stores it.
    /// beta = 1 accumulates into y.
    @inlinable
    public static func linear(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                              weight: UnsafePointer<Float>, outFeatures: Int,
                              into y: UnsafeMutablePointer<Float>, alpha: Float = 1, beta: Float = 0) {
        multiply(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures, alpha: alpha,
                 a: x, lda: inFeatures, b: weight, ldb: inFeatures, beta: beta, c: y, ldc: outFeatures)
    }

    /// Sets the number of OpenBLAS threads (process-wide).
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    /// The number of OpenBLAS threads in use.
    public static var threads: Int { Int(openblas_get_num_threads()) }

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
