// Swift faces of the fused C kernels (CKernels), so that higher modules need not import C.
import CKernels

/// Fused elementwise kernels (RMSNorm, RoPE, attention tiles, SwiGLU, dtype conversion).
public enum Kernels {
    public static func bf16ToF32(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) { pk_bf16_to_f32(src, dst, n) }
    public static func f16ToF32(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) { pk_f16_to_f32(src, dst, n) }
    public static func f32ToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, _ n: Int) { pk_f32_to_bf16(src, dst, n) }
    public static func f32ToF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, _ n: Int) { pk_f32_to_f16(src, dst, n) }

    /// y (R, C) = x / rms(x) * w; rstd (R) kept for the backward pass when non-nil.
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>?, rows: Int, cols: Int, eps: Float) {
        pk_rmsnorm_forward(x, weight, y, rstd, rows, cols, eps)
    }

    /// dx (= or +=) and dWeight (+=, may be nil) from dy.
    public static func rmsNormBackward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                       dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
                                       rows: Int, cols: Int, accumulate: Bool) {
        pk_rmsnorm_backward(x, weight, rstd, dy, dx, dWeight, rows, cols, accumulate ? 1 : 0)
    }

    /// Rotates (R, heads·D) in place by the angles of each row's position; `inverse` for the backward pass.
    public static func rope(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, cos: UnsafePointer<Float>,
                            sin: UnsafePointer<Float>, rows: Int, heads: Int, headDim: Int, inverse: Bool = false) {
        pk_rope(x, positions, cos, sin, rows, heads, headDim, inverse ? 1 : 0)
    }

    /// One online-softmax step of blockwise attention on a tile of raw scores (rows, cols) at leading dimension `ld`:
    /// row i sees its first clamp(firstVisible + i, 0, cols) keys. Updates each row's running max (of scaled scores)
    /// and sum, overwrites the tile with exp(scale·s − max) (0 where masked) and rescales the row's output
    /// accumulator (rows, dim) at `ldAccumulator` to the new max; nil on a query block's first tile.
    public static func attentionTileSoftmax(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, firstVisible: Int,
                                            scale: Float, rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>,
                                            accumulator: UnsafeMutablePointer<Float>?, ldAccumulator: Int, dim: Int) {
        pk_attention_block_softmax(s, rows, cols, ld, firstVisible, scale, rowMax, rowSum, accumulator, ldAccumulator, dim)
    }

    /// Backward of one tile: the raw scores `s` become p = exp(scale·s − logSumExp[i]) and `dp` (dOut·vᵀ) becomes
    /// ds = p ⊙ (dp − delta[i]) · scale, the gradient of the raw scores; masked entries 0 in both.
    public static func attentionTileBackward(_ s: UnsafeMutablePointer<Float>, _ dp: UnsafeMutablePointer<Float>, rows: Int,
                                             cols: Int, ld: Int, firstVisible: Int, scale: Float,
                                             logSumExp: UnsafePointer<Float>, delta: UnsafePointer<Float>) {
        pk_attention_block_backward(s, dp, rows, cols, ld, firstVisible, scale, logSumExp, delta)
    }

    /// out (dim) = softmax(scale · q·kⱼ over j < count) · v for one query q (dim), keys and values `count` rows at
    /// leading dimension ld; `scores` holds count floats of scratch (decoding's attention).
    public static func attentionQuery(_ q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, ld: Int,
                                      count: Int, dim: Int, scale: Float, scores: UnsafeMutablePointer<Float>,
                                      into out: UnsafeMutablePointer<Float>) {
        pk_attention_query(q, keys, values, ld, count, dim, scale, scores, out)
    }

    /// out[i] = a row i · b row i, for `rows` rows of `cols` at leading dimensions lda and ldb.
    public static func rowDot(_ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int, rows: Int, cols: Int,
                              into out: UnsafeMutablePointer<Float>) {
        pk_row_dot(a, lda, b, ldb, rows, cols, out)
    }

    /// h = silu(g) ⊙ u.
    public static func siluMul(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, into h: UnsafeMutablePointer<Float>, count: Int) {
        pk_silu_mul(g, u, h, count)
    }

    /// dg, du (overwritten) from dh.
    public static func siluMulBackward(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, dh: UnsafePointer<Float>,
                                       dg: UnsafeMutablePointer<Float>, du: UnsafeMutablePointer<Float>, count: Int) {
        pk_silu_mul_backward(g, u, dh, dg, du, count)
    }

    /// y += x.
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) { pk_add_inplace(y, x, count) }

    /// Cross-entropy of a logits row against `target` (natural log); writes (softmax − onehot)·gradScale into
    /// dLogits when non-nil.
    public static func crossEntropy(_ logits: UnsafePointer<Float>, vocab: Int, target: Int32,
                                    dLogits: UnsafeMutablePointer<Float>?, gradScale: Float) -> Double {
        pk_cross_entropy_row(logits, vocab, target, dLogits, gradScale)
    }

    /// log Σ exp(x) and the index of the largest element.
    public static func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> (value: Double, argmax: Int) {
        var am: Int32 = 0
        let v = pk_logsumexp(x, count, &am)
        return (v, Int(am))
    }

    // MARK: training

    /// Vectorised `crossEntropy`; `dLogits` may be the logits themselves (overwritten in place).
    public static func crossEntropyVectorized(_ logits: UnsafePointer<Float>, vocab: Int, target: Int32,
                                              dLogits: UnsafeMutablePointer<Float>?, gradScale: Float) -> Double {
        pk_cross_entropy_row_vec(logits, vocab, target, dLogits, gradScale)
    }

    /// The distillation loss of one row of student logits against teacher logits (both `vocab` wide):
    /// (1 − α)·CE + α·τ²·KL(softmax(teacher/τ) ‖ softmax(logits/τ)), with its gradient times `gradScale` written into
    /// `dLogits` when non-nil (it may be the logits themselves). Returns the loss and its two parts; α = 0 gives
    /// `crossEntropyVectorized`'s loss and gradient bit for bit.
    public static func distillation(_ logits: UnsafePointer<Float>, teacher: UnsafePointer<Float>, vocab: Int, target: Int32,
                                    alpha: Double, temperature: Double, dLogits: UnsafeMutablePointer<Float>?,
                                    gradScale: Float) -> (loss: Double, crossEntropy: Double, divergence: Double) {
        var parts = (0.0, 0.0)
        let loss = withUnsafeMutableBytes(of: &parts) { p in
            pk_distill_row_vec(logits, teacher, vocab, target, alpha, temperature, dLogits, gradScale,
                               p.baseAddress!.assumingMemoryBound(to: Double.self))
        }
        return (loss, parts.0, parts.1)
    }

    /// Vectorised `siluMulBackward`: dg, du (overwritten) from dh.
    public static func siluMulBackwardVectorized(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, dh: UnsafePointer<Float>,
                                                 dg: UnsafeMutablePointer<Float>, du: UnsafeMutablePointer<Float>, count: Int) {
        pk_silu_mul_backward_vec(g, u, dh, dg, du, count)
    }

    /// h (N, R) = alpha · x (N, K) · aᵀ with a (R, K): the LoRA-rank product BLAS runs slowly.
    public static func skinnyNT(_ x: UnsafePointer<Float>, ldx: Int, _ a: UnsafePointer<Float>, r: Int, k: Int,
                                into h: UnsafeMutablePointer<Float>, ldh: Int, rows n: Int, alpha: Float = 1) {
        pk_skinny_nt(x, ldx, a, r, k, h, ldh, n, alpha)
    }

    /// y (N, K) += alpha · c (N, R) · m with m (R, K).
    public static func skinnyNNAccumulate(_ c: UnsafePointer<Float>, ldc: Int, r: Int, _ m: UnsafePointer<Float>, k: Int,
                                          into y: UnsafeMutablePointer<Float>, ldy: Int, rows n: Int, alpha: Float = 1) {
        pk_skinny_nn_acc(c, ldc, r, m, k, y, ldy, n, alpha)
    }

    /// g (R, K) += alpha · cᵀ · z with c (N, R), z (N, K).
    public static func skinnyTNAccumulate(_ c: UnsafePointer<Float>, ldc: Int, r: Int, _ z: UnsafePointer<Float>, ldz: Int, k: Int,
                                          into g: UnsafeMutablePointer<Float>, ldg: Int, rows n: Int, alpha: Float = 1) {
        pk_skinny_tn_acc(c, ldc, r, z, ldz, k, g, ldg, n, alpha)
    }

    /// y = x ⊙ mask / (1 − p), the mask a function of (key, index): the same key gives the same mask. y may be x.
    /// x and y hold elements `first`… of a larger tensor, whose mask they draw.
    public static func dropout(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int, first: Int = 0,
                               key: UInt64, p: Float) {
        pk_dropout_from(x, y, count, first, key, p)
    }
}
