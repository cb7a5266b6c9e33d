// The forward pass with each hidden state handed to an observer as it appears, instead of copied into
// fresh tensors: the layer analysis folds h_0…h_L into its own reused buffer, so a pass over many
// batches allocates no per-batch copies.
// Dimension glossary: B batch, T tokens, N = B·T rows, C model dim, V vocab, L layers.
import Foundation
import Tensor

extension LlamaModel {
    /// Logits (B, T, V) of B sequences of T tokens (row-major `tokens`), calling `observe(l, h)` with the
    /// residual stream h (N, C) entering layer l for l = 0…L−1, then `observe(L, h)` with the last
    /// layer's output before the final norm. `h` is valid only during the call.
    public func forward(tokens: [Int32], batch b: Int, length t: Int,
                        observingHiddenStates observe: (Int, UnsafePointer<Float>) -> Void) -> Tensor {
        withoutActuallyEscaping(observe) { observe in
            forward(tokens: tokens, batch: b, length: t, observe: observe).logits
        }
    }
}
