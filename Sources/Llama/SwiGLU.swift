// The SwiGLU gate as a forward/backward pair: h = silu(g) ⊙ u.
// Dimension glossary: N rows (B·T), F ffn dim.
import Tensor

/// silu(gate) ⊙ up, elementwise.
public enum SwiGLU {
    /// h (N, F) = silu(g) ⊙ u. The backward pass needs both g and u (the caller keeps them); h may be either.
    public static func forward(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, into h: UnsafeMutablePointer<Float>,
                               count: Int) {
        Kernels.siluMul(g, u, into: h, count: count)
    }

    /// Backward of `forward`: dGate and dUp (N, F) are overwritten from dh (either may be dh itself).
    public static func backward(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, dh: UnsafePointer<Float>,
                                dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        Kernels.siluMulBackwardVectorized(g, u, dh: dh, dg: dGate, du: dUp, count: count)
    }
}
