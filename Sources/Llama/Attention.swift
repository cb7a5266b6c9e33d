// Causal grouped-query attention: query head h reads kv head h / (H/G). Scores are computed one head at
// a time with GEMMs that read the heads in place through leading dimensions (no transposed copies).
// Forward/backward pair: the forward keeps the softmax probabilities (B, H, T, S) when asked, so that the
// backward needs neither QKᵀ nor the softmax again; it also reads q, k and v, which the caller keeps.
// Dimension glossary: B batch, T queries, S keys (past + T), H query heads, G kv heads, D head dim.
import Foundation
import Tensor

/// Scaled dot-product attention with a causal mask.
public enum Attention {
    /// Floats of score scratch one call needs: (T, S) per head, for the heads processed concurrently.
    public static func scoreScratchCount(queries t: Int, keys s: Int, parallelism: Parallelism) -> Int {
        t * s * parallelism.threads
    }

    /// out (B·T, H·D) = softmax(scale · q kᵀ + causal mask) v per head.
    /// - q: (B·T, H·D) after RoPE. keys/values: per batch element, S rows of G·D (batch stride given).
    /// - probabilities: when non-nil, (B, H, T, S) softmax outputs are kept there for the backward pass.
    public static func forward(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                               keyBatchStride: Int, batch b: Int, queries t: Int, keyCount s: Int, firstQueryPosition q0: Int,
                               heads H: Int, kvHeads G: Int, headDim D: Int, scores: UnsafeMutablePointer<Float>,
                               probabilities: UnsafeMutablePointer<Float>?, out: UnsafeMutablePointer<Float>,
                               parallelism: Parallelism) {
        let scale = Float(1.0 / Double(D).squareRoot())
        let group = H / G
        let total = b * H
        // One head per thread at a time: per-head GEMMs are too small to split well, so each runs
        // single-threaded inside its worker.
        let workers = min(parallelism.threads, total)
        do {
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let buf = scores + w * t * s
                var job = w
                while job < total {
                    let bi = job / H, hi = job % H, g = hi / group
                    let qp = q + bi * t * H * D + hi * D
                    let kp = keys + bi * keyBatchStride + g * D
                    let vp = values + bi * keyBatchStride + g * D
                    let p = probabilities.map { $0 + job * t * s } ?? buf
                    Gemm.multiply(transA: false, transB: true, m: t, n: s, k: D, a: qp, lda: H * D, b: kp, ldb: G * D, c: p, ldc: s, parallelism: .serial)
                    Kernels.causalSoftmax(p, queries: t, keys: s, firstQueryPosition: q0, scale: scale)
                    Gemm.multiply(transA: false, transB: false, m: t, n: D, k: s, a: p, lda: s, b: vp, ldb: G * D,
                                  c: out + bi * t * H * D + hi * D, ldc: H * D, parallelism: .serial)
                    job += workers
                }
            }
        }
    }

    /// Backward of `forward` from dOut (B·T, H·D): dq (B·T, H·D), dKeys and dValues (same layout as keys and
    /// values: per batch element S rows of G·D at `keyBatchStride`) are overwritten. q, keys and values are
    /// those the forward read (after RoPE); `probabilities` (B, H, T, S) is what it kept. `scratch` holds
    /// `scoreScratchCount(queries:keys:)` floats.
    /// Work is split by (batch, kv head) so that the heads sharing a kv head add into its dK, dV on one thread.
    public static func backward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, keys: UnsafePointer<Float>,
                                values: UnsafePointer<Float>, probabilities: UnsafePointer<Float>, keyBatchStride: Int,
                                batch b: Int, queries t: Int, keyCount s: Int, firstQueryPosition q0: Int,
                                heads H: Int, kvHeads G: Int, headDim D: Int, scratch: UnsafeMutablePointer<Float>,
                                dq: UnsafeMutablePointer<Float>, dKeys: UnsafeMutablePointer<Float>,
                                dValues: UnsafeMutablePointer<Float>, parallelism: Parallelism) {
        let scale = Float(1.0 / Double(D).squareRoot())
        let group = H / G
        let total = b * G
        let workers = min(parallelism.threads, total)
        // Each thread runs its GEMMs serially: two threads each splitting their products again would only
        // contend (measured 16× slower on 2 cores).
        do {
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let dp = scratch + w * t * s   // (T, S): dP, then in place dS (the gradient of the raw scores q·kᵀ)
                var job = w
                while job < total {
                    let bi = job / G, g = job % G
                    let kp = keys + bi * keyBatchStride + g * D, vp = values + bi * keyBatchStride + g * D
                    let dk = dKeys + bi * keyBatchStride + g * D, dv = dValues + bi * keyBatchStride + g * D
                    for r in 0..<s {
                        (dk + r * G * D).update(repeating: 0, count: D)
                        (dv + r * G * D).update(repeating: 0, count: D)
                    }
                    for hi in g * group..<(g + 1) * group {
                        let p = probabilities + (bi * H + hi) * t * s
                        let qp = q + bi * t * H * D + hi * D
                        let dop = dOut + bi * t * H * D + hi * D
                        let dqp = dq + bi * t * H * D + hi * D
                        // out = P·V: dP (T, S) = dOut·Vᵀ and dV (S, D) += Pᵀ·dOut.
                        Gemm.multiply(transA: false, transB: true, m: t, n: s, k: D, a: dop, lda: H * D, b: vp, ldb: G * D,
                                      c: dp, ldc: s, parallelism: .serial)
                        Gemm.multiply(transA: true, transB: false, m: s, n: D, k: t, a: p, lda: s, b: dop, ldb: H * D,
                                      beta: 1, c: dv, ldc: G * D, parallelism: .serial)
                        // P = softmax(scale · q·kᵀ + mask): dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale.
                        Kernels.causalSoftmaxBackward(p, dp, queries: t, keys: s, firstQueryPosition: q0, scale: scale)
                        // q·kᵀ: dQ (T, D) = dS·K and dK (S, D) += dSᵀ·Q.
                        Gemm.multiply(transA: false, transB: false, m: t, n: D, k: s, a: dp, lda: s, b: kp, ldb: G * D,
                                      c: dqp, ldc: H * D, parallelism: .serial)
                        Gemm.multiply(transA: true, transB: false, m: s, n: D, k: t, a: dp, lda: s, b: qp, ldb: H * D,
                                      beta: 1, c: dk, ldc: G * D, parallelism: .serial)
                    }
                    job += workers
                }
            }
        }
    }
}
