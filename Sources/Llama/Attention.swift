// Causal grouped-query attention: query head h reads kv head h / (H/G). Scores are computed one head at
// a time with GEMMs that read the heads in place through leading dimensions (no transposed copies).
// Dimension glossary: B batch, T queries, S keys (past + T), H query heads, G kv heads, D head dim.
import Foundation
import Tensor

/// Scaled dot-product attention with a causal mask.
public enum Attention {
    /// Floats of score scratch one call needs: (T, S) per head, for the heads processed concurrently.
    public static func scoreScratchCount(queries t: Int, keys s: Int) -> Int { t * s * parallelHeads }

    /// Heads processed at once (each with its own score buffer).
    static let parallelHeads = 2

    /// out (B·T, H·D) = softmax(scale · q kᵀ + causal mask) v per head.
    /// - q: (B·T, H·D) after RoPE. keys/values: per batch element, S rows of G·D (batch stride given).
    /// - probabilities: when non-nil, (B, H, T, S) softmax outputs are kept there for the backward pass.
    public static func forward(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                               keyBatchStride: Int, batch b: Int, queries t: Int, keyCount s: Int, firstQueryPosition q0: Int,
                               heads H: Int, kvHeads G: Int, headDim D: Int, scores: UnsafeMutablePointer<Float>,
                               probabilities: UnsafeMutablePointer<Float>?, out: UnsafeMutablePointer<Float>) {
        let scale = Float(1.0 / Double(D).squareRoot())
        let group = H / G
        let total = b * H
        // Two heads at a time on separate threads: per-head GEMMs are too small for OpenBLAS to split well.
        let workers = min(parallelHeads, total)
        // Per-head GEMMs run single-threaded inside each worker: OpenBLAS's own threads would only contend.
        let blasThreads = Gemm.threads
        Gemm.setThreads(1)
        defer { Gemm.setThreads(blasThreads) }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let buf = scores + w * t * s
            var job = w
            while job < total {
                let bi = job / H, hi = job % H, g = hi / group
                let qp = q + bi * t * H * D + hi * D
                let kp = keys + bi * keyBatchStride + g * D
                let vp = values + bi * keyBatchStride + g * D
                let p = probabilities.map { $0 + job * t * s } ?? buf
                Gemm.multiply(transA: false, transB: true, m: t, n: s, k: D, a: qp, lda: H * D, b: kp, ldb: G * D, c: p, ldc: s)
                Kernels.causalSoftmax(p, queries: t, keys: s, firstQueryPosition: q0, scale: scale)
                Gemm.multiply(transA: false, transB: false, m: t, n: D, k: s, a: p, lda: s, b: vp, ldb: G * D,
                              c: out + bi * t * H * D + hi * D, ldc: H * D)
                job += workers
            }
        }
    }
}
