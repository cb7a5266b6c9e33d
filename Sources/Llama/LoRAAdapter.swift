// A LoRA adapter in PEFT's orientation: A is (R, in), B is (out, R), and the layer computes
// y = x·Wᵀ + scale · (x·Aᵀ)·Bᵀ with scale = alpha / R. B starts at zero so training starts at the base model.
// Its forward/backward pair adds the low-rank term to a Linear's output and gradients.
// Dimension glossary: N rows (B·T), I in features, O out features, R rank.
import Tensor

/// Low-rank update of one projection.
public final class LoRAAdapter {
    public let rank: Int            // R
    public let alpha: Float
    public var scale: Float { alpha / Float(rank) }
    public let a: Tensor            // (R, in)
    public let b: Tensor            // (out, R)
    /// Gradients, allocated only when the adapter trains.
    public var dA: Tensor?          // (R, in)
    public var dB: Tensor?          // (out, R)

    /// I, the adapted projection's input width.
    public var inFeatures: Int { a.shape[1] }
    /// O, the adapted projection's output width.
    public var outFeatures: Int { b.shape[0] }

    public init(a: Tensor, b: Tensor, alpha: Float) {
        precondition(a.shape.count == 2 && b.shape.count == 2 && a.shape[0] == b.shape[1], "LoRA shapes A \(a.shape), B \(b.shape)")
        rank = a.shape[0]
        self.alpha = alpha
        self.a = a
        self.b = b
    }

    /// y (N, O) += scale · h·Bᵀ with h (N, R) = x·Aᵀ written to `hidden`: the backward pass reads h for dB, so
    /// the caller keeps it. The rank-R products run in C (BLAS is slow at these shapes) on split rows.
    public func forward(_ x: UnsafePointer<Float>, rows n: Int, hidden h: UnsafeMutablePointer<Float>,
                        into y: UnsafeMutablePointer<Float>, parallelism: Parallelism) {
        let R = rank, I = inFeatures, O = outFeatures, s = scale
        withUnsafeTemporaryAllocation(of: Float.self, capacity: R * O) { bt in
            let bt = bt.baseAddress!  // Bᵀ (R, O): rows of y then stream against contiguous rows
            transpose(b.data, rows: O, cols: R, into: bt)
            parallelism.ranges(n) { rows in
                let r0 = rows.lowerBound
                Kernels.skinnyNT(x + r0 * I, ldx: I, a.data, r: R, k: I, into: h + r0 * R, ldh: R, rows: rows.count)
                Kernels.skinnyNNAccumulate(h + r0 * R, ldc: R, r: R, bt, k: O, into: y + r0 * O, ldy: O, rows: rows.count, alpha: s)
            }
        }
    }

    /// Backward of `forward` from dy (N, O): with dh (N, R) = scale · dy·B,
    /// dx (N, I) += dh·A when dx is given; dA (R, I) += dhᵀ·x and dB (O, R) += scale · dyᵀ·h when allocated.
    public func backward(_ x: UnsafePointer<Float>, rows n: Int, hidden h: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, parallelism: Parallelism) {
        let R = rank, I = inFeatures, O = outFeatures, s = scale
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * R * O + n * R) { buf in
            let bt = buf.baseAddress!           // Bᵀ (R, O)
            let dbt = bt + R * O                // dBᵀ (R, O) before it is added into dB (O, R)
            let dh = dbt + R * O                // (N, R)
            transpose(b.data, rows: O, cols: R, into: bt)
            parallelism.ranges(n) { rows in
                let r0 = rows.lowerBound
                Kernels.skinnyNT(dy + r0 * O, ldx: O, bt, r: R, k: O, into: dh + r0 * R, ldh: R, rows: rows.count, alpha: s)
                if let dx {
                    Kernels.skinnyNNAccumulate(dh + r0 * R, ldc: R, r: R, a.data, k: I, into: dx + r0 * I, ldy: I, rows: rows.count)
                }
            }
            if let dB {
                dbt.initialize(repeating: 0, count: R * O)
                // Columns split in blocks of 8 so each worker's vector loop stays whole.
                parallelism.ranges(O, granularity: 8) { cols in
                    let c0 = cols.lowerBound
                    Kernels.skinnyTNAccumulate(h, ldc: R, r: R, dy + c0, ldz: O, k: cols.count, into: dbt + c0, ldg: O,
                                               rows: n, alpha: s)
                }
                for o in 0..<O {
                    for j in 0..<R { dB.data[o * R + j] += dbt[j * O + o] }
                }
            }
            if let dA {
                parallelism.ranges(I, granularity: 8) { cols in
                    let c0 = cols.lowerBound
                    Kernels.skinnyTNAccumulate(dh, ldc: R, r: R, x + c0, ldz: I, k: cols.count, into: dA.data + c0, ldg: I, rows: n)
                }
            }
        }
    }

    /// dst (cols, rows) = srcᵀ for a small row-major src (rows, cols).
    private func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
        for i in 0..<rows {
            for j in 0..<cols { dst[j * rows + i] = src[i * cols + j] }
        }
    }
}
