// Rotary position embedding as a forward/backward pair (HF rotate-half convention). The rotation is
// orthogonal, so the backward pass is the inverse rotation of the gradient: nothing is kept but positions.
// Dimension glossary: N rows (B·T), H heads (query or kv), D head dim.
import Tensor

/// Applies the rotations of a `RotaryEmbedding`'s tables in place.
public enum RoPE {
    /// Rotates x (N, H·D) in place; row r sits at `positions[r]`. The tables must cover those positions
    /// (`RotaryEmbedding.ensure(length:)`).
    public static func forward(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, rope: RotaryEmbedding,
                               rows n: Int, heads: Int) {
        apply(x, positions: positions, rope: rope, rows: n, heads: heads, inverse: false)
    }

    /// Backward of `forward`: dx (N, H·D) in place, from the gradient of the rotated values.
    public static func backward(_ dx: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, rope: RotaryEmbedding,
                                rows n: Int, heads: Int) {
        apply(dx, positions: positions, rope: rope, rows: n, heads: heads, inverse: true)
    }

    private static func apply(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, rope: RotaryEmbedding,
                              rows n: Int, heads: Int, inverse: Bool) {
        rope.cos.withUnsafeBufferPointer { c in
            rope.sin.withUnsafeBufferPointer { s in
                Kernels.rope(x, positions: positions, cos: c.baseAddress!, sin: s.baseAddress!, rows: n, heads: heads,
                             headDim: rope.headDim, inverse: inverse)
            }
        }
    }
}
