// The SwiGLU gate as a forward/backward pair: h = silu(g) ⊙ u.
// Dimension glossary: N rows (B·T), F ffn dim.
import Tensor

/// silu(gate) ⊙ up, elementwise.
public enum SwiGLU {
    /// h (N, F) = silu(g) ⊙ u. The backward pass needs both g and u (the caller keeps them); h may be either.
    public static func forward(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, into h: UnsafeMutablePointer<Float>,
                               count: Int, parallelism: Parallelism = .serial) {
        Elementwise.split(count, parallelism) { r in Kernels.siluMul(g + r.lowerBound, u + r.lowerBound, into: h + r.lowerBound, count: r.count) }
    }

    /// Backward of `forward`: dGate and dUp (N, F) are overwritten from dh (either may be dh itself).
    public static func backward(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, dh: UnsafePointer<Float>,
                                dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int,
                                parallelism: Parallelism = .serial) {
        Elementwise.split(count, parallelism) { r in
            let o = r.lowerBound
            Kernels.siluMulBackwardVectorized(g + o, u + o, dh: dh + o, dg: dGate + o, du: dUp + o, count: r.count)
        }
    }
}
