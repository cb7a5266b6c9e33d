// The residual connection of a block half as a forward/backward pair: out = skip + branch(skip).
// Dimension glossary: N rows (B·T), C model dim.
import Tensor

/// Adds a block half's branch back onto the residual stream.
public enum Residual {
    /// out (N, C) = skip + branch; out may be either input. Nothing is kept: an add passes its gradient through.
    public static func forward(skip: UnsafePointer<Float>, branch: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                               count: Int, parallelism: Parallelism = .serial) {
        Elementwise.split(count, parallelism) { r in
            let o = r.lowerBound
            if out != UnsafeMutablePointer(mutating: skip) { (out + o).update(from: skip + o, count: r.count) }
            Kernels.add(branch + o, into: out + o, count: r.count)
        }
    }

    /// Backward of `forward`. Both summands receive dOut unchanged: the branch reads dOut as its output gradient
    /// directly, and the skip path carries it down the stream. The stream's gradient buffer (dOut on entry) then
    /// becomes the gradient of the block-half input by adding what the branch sent back to that input:
    /// dStream += dBranchInput.
    public static func backward(branchInputGradient: UnsafePointer<Float>, into dStream: UnsafeMutablePointer<Float>, count: Int,
                                parallelism: Parallelism = .serial) {
        Elementwise.split(count, parallelism) { r in Kernels.add(branchInputGradient + r.lowerBound, into: dStream + r.lowerBound, count: r.count) }
    }
}
