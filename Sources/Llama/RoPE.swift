// Rotary position embedding as a forward/backward pair (HF rotate-half convention). The rotation is
// orthogonal, so the backward pass is the inverse rotation of the gradient: nothing is kept but positions.
// Dimension glossary: N rows (B·T), H heads (query or kv), D head dim.
import Tensor

/// Applies the rotations of a `RotaryEmbedding`'s tables in place.
public enum RoPE {
    /// Rotates x (N, H·D) in place; row r sits at `positions[r]`. The tables must cover those positions
    /// (`RotaryEmbedding.ensure(length:)`).
    public static func forward(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, rope: RotaryEmbedding,
                               rows n: Int, heads: Int, parallelism: Parallelism = .serial) {
        apply(x, positions: positions, rope: rope, rows: n, heads: heads, inverse: false, parallelism: parallelism)
    }

    /// Backward of `forward`: dx (N, H·D) in place, from the gradient of the rotated values.
    public static func backward(_ dx: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, rope: RotaryEmbedding,
                                rows n: Int, heads: Int, parallelism: Parallelism = .serial) {
        apply(dx, positions: positions, rope: rope, rows: n, heads: heads, inverse: true, parallelism: parallelism)
    }

    private static func apply(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, rope: RotaryEmbedding,
                              rows n: Int, heads: Int, inverse: Bool, parallelism: Parallelism) {
        let width = heads * rope.headDim
        rope.cos.withUnsafeBufferPointer { c in
            rope.sin.withUnsafeBufferPointer { s in
                let (c, s) = (c.baseAddress!, s.baseAddress!)
                parallelism.ranges(n, minimumPerWorker: Elementwise.rowsPerWorker(cols: width)) { r in
                    Kernels.rope(x + r.lowerBound * width, positions: positions + r.lowerBound, cos: c, sin: s, rows: r.count,
                                 heads: heads, headDim: rope.headDim, inverse: inverse)
                }
            }
        }
    }
}
