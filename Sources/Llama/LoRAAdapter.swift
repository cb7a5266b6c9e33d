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
    /// PEFT's lora_dropout: the probability an input element is zeroed on the adapter's path (training only).
    public var dropout: Float = 0
    /// The row of the whole batch that row 0 of this process's rows is (data parallelism: rank r of N trains rows
    /// r·B·T…): dropout masks follow the whole batch's row index, so N ranks draw the masks one process would.
    public var dropoutFirstRow = 0
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

    /// Floating-point operations of `forward` on n rows: x·Aᵀ and h·Bᵀ.
    public func forwardFLOPs(rows n: Int) -> Double { 2 * Double(n * rank * (inFeatures + outFeatures)) }

    /// Floating-point operations of `backward` on n rows: dh = dy·B, then dx += dh·A (with `inputGradient`),
    /// dB += dyᵀ·h and dA += dhᵀ·x (when they are allocated).
    public func backwardFLOPs(rows n: Int, inputGradient: Bool) -> Double {
        let I = inFeatures, O = outFeatures
        return 2 * Double(n * rank * (O + (inputGradient ? I : 0) + (dB != nil ? O : 0) + (dA != nil ? I : 0)))
    }

    /// y (N, O) += scale · h·Bᵀ with h (N, R) = drop(x)·Aᵀ written to `hidden`: the backward pass reads h for dB,
    /// so the caller keeps it. drop(x) is x unless `dropoutKey` is given and `dropout` > 0 (a training forward):
    /// then elements are zeroed with probability `dropout` and the rest scaled by 1/(1 − dropout), as PEFT does,
    /// with a mask the key regenerates in backward. The rank-R products run in C (BLAS is slow at these shapes).
    public func forward(_ x: UnsafePointer<Float>, rows n: Int, hidden h: UnsafeMutablePointer<Float>,
                        into y: UnsafeMutablePointer<Float>, dropoutKey: UInt64? = nil, parallelism: Parallelism) {
        if let key = dropoutKey, dropout > 0 {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: n * inFeatures) { xd in
                Kernels.dropout(x, into: xd.baseAddress!, count: n * inFeatures, first: dropoutFirstRow * inFeatures, key: key, p: dropout)
                lowRankForward(xd.baseAddress!, rows: n, hidden: h, into: y, parallelism: parallelism)
            }
        } else {
            lowRankForward(x, rows: n, hidden: h, into: y, parallelism: parallelism)
        }
    }

    /// h (N, R) = drop(x)·Aᵀ alone: what `forward` keeps for backward, recomputed when it was not kept.
    public func hidden(_ x: UnsafePointer<Float>, rows n: Int, into h: UnsafeMutablePointer<Float>, dropoutKey: UInt64? = nil) {
        if let key = dropoutKey, dropout > 0 {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: n * inFeatures) { xd in
                Kernels.dropout(x, into: xd.baseAddress!, count: n * inFeatures, first: dropoutFirstRow * inFeatures, key: key, p: dropout)
                Kernels.skinnyNT(xd.baseAddress!, ldx: inFeatures, a.data, r: rank, k: inFeatures, into: h, ldh: rank, rows: n)
            }
        } else {
            Kernels.skinnyNT(x, ldx: inFeatures, a.data, r: rank, k: inFeatures, into: h, ldh: rank, rows: n)
        }
    }

    private func lowRankForward(_ x: UnsafePointer<Float>, rows n: Int, hidden h: UnsafeMutablePointer<Float>,
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

    /// Backward of `forward` (with the same `dropoutKey`) from dy (N, O): with dh (N, R) = scale · dy·B,
    /// dx (N, I) += drop'(dh·A) when dx is given; dA (R, I) += dhᵀ·drop(x) and dB (O, R) += scale · dyᵀ·h when
    /// allocated. drop' applies the forward's mask and scale to the gradient.
    public func backward(_ x: UnsafePointer<Float>, rows n: Int, hidden h: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, dropoutKey: UInt64? = nil, parallelism: Parallelism) {
        guard let key = dropoutKey, dropout > 0 else {
            return lowRankBackward(x, rows: n, hidden: h, dy: dy, dx: dx, parallelism: parallelism)
        }
        let count = n * inFeatures
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * count) { buf in
            let xd = buf.baseAddress!, dxd = xd + count
            Kernels.dropout(x, into: xd, count: count, first: dropoutFirstRow * inFeatures, key: key, p: dropout)
            if dx != nil { dxd.initialize(repeating: 0, count: count) }
            lowRankBackward(xd, rows: n, hidden: h, dy: dy, dx: dx == nil ? nil : dxd, parallelism: parallelism)
            if let dx {
                Kernels.dropout(dxd, into: dxd, count: count, first: dropoutFirstRow * inFeatures, key: key, p: dropout)
                Kernels.add(dxd, into: dx, count: count)
            }
        }
    }

    private func lowRankBackward(_ x: UnsafePointer<Float>, rows n: Int, hidden h: UnsafePointer<Float>, dy: UnsafePointer<Float>,
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
