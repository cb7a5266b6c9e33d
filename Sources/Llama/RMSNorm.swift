// RMSNorm as a forward/backward pair: y = x / sqrt(mean(x²) + eps) ⊙ w.
// Dimension glossary: N rows (B·T), C model dim.
import Tensor

/// Root-mean-square normalisation over the last dimension with a learned scale.
public enum RMSNorm {
    /// y (N, C) from x (N, C). rstd (N), each row's 1/rms, is written for the backward pass (nil: none follows),
    /// which also reads x (the caller keeps it): with both, nothing has to be recomputed.
    public static func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>?, rows n: Int, cols C: Int, eps: Float) {
        Kernels.rmsNorm(x, weight: weight, into: y, rstd: rstd, rows: n, cols: C, eps: eps)
    }

    /// Backward of `forward`: dx (N, C) is overwritten from dy (N, C); dWeight (C) += Σ rows of dy ⊙ x·rstd when
    /// given (nil for a frozen norm). dx must not alias dy.
    public static func backward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
                                rows n: Int, cols C: Int) {
        Kernels.rmsNormBackward(x, weight: weight, rstd: rstd, dy: dy, dx: dx, dWeight: dWeight, rows: n, cols: C, accumulate: false)
    }
}
