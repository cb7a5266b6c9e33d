// RMSNorm as a forward/backward pair: y = x / sqrt(mean(x²) + eps) ⊙ w.
// Dimension glossary: N rows (B·T), C model dim.
import Tensor

/// Root-mean-square normalisation over the last dimension with a learned scale.
public enum RMSNorm {
    /// y (N, C) from x (N, C). rstd (N), each row's 1/rms, is written for the backward pass (nil: none follows),
    /// which also reads x (the caller keeps it): with both, nothing has to be recomputed. Rows are independent: split
    /// over `parallelism`'s threads, each row computes exactly as on one.
    public static func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>?, rows n: Int, cols C: Int, eps: Float,
                               parallelism: Parallelism = .serial) {
        parallelism.ranges(n, minimumPerWorker: Elementwise.rowsPerWorker(cols: C)) { r in
            Kernels.rmsNorm(x + r.lowerBound * C, weight: weight, into: y + r.lowerBound * C, rstd: rstd.map { $0 + r.lowerBound },
                            rows: r.count, cols: C, eps: eps)
        }
    }

    /// Backward of `forward`: dx (N, C) is overwritten from dy (N, C); dWeight (C) += Σ rows of dy ⊙ x·rstd when
    /// given (nil for a frozen norm). dx must not alias dy. A frozen norm's rows split over `parallelism`'s threads
    /// (exactly as on one); a trained one's stay on one thread, so that dWeight sums its rows in one order.
    public static func backward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
                                rows n: Int, cols C: Int, parallelism: Parallelism = .serial) {
        guard dWeight == nil else {
            return Kernels.rmsNormBackward(x, weight: weight, rstd: rstd, dy: dy, dx: dx, dWeight: dWeight, rows: n, cols: C, accumulate: false)
        }
        parallelism.ranges(n, minimumPerWorker: Elementwise.rowsPerWorker(cols: C)) { r in
            let o = r.lowerBound * C
            Kernels.rmsNormBackward(x + o, weight: weight, rstd: rstd + r.lowerBound, dy: dy + o, dx: dx + o, dWeight: nil,
                                    rows: r.count, cols: C, accumulate: false)
        }
    }
}
