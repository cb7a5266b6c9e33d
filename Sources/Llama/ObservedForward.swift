// The forward pass with each hidden state handed to an observer as it appears, instead of copied into
// fresh tensors: the layer analysis folds h_0…h_L into its own reused buffer, so a pass over many
// batches allocates no per-batch copies.
// Dimension glossary: B batch, T tokens, N = B·T rows, C model dim, V vocab, L layers.
import Foundation
import ModelIO
import Tensor

extension LlamaModel {
    /// Logits (B, T, V) of B sequences of T tokens (row-major `tokens`), calling `observe(l, h)` with the
    /// residual stream h (N, C) entering layer l for l = 0…L−1, then `observe(L, h)` with the last
    /// layer's output before the final norm. `h` is valid only during the call.
    public func forward(tokens: [Int32], batch b: Int, length t: Int,
                        observingHiddenStates observe: (Int, UnsafePointer<Float>) -> Void) -> Tensor {
        precondition(tokens.count == b * t, "\(tokens.count) tokens for B=\(b), T=\(t)")
        let n = b * t
        rope.ensure(length: t)
        let h = Tensor(zeros: [b, t, config.hiddenSize])   // residual stream
        embed(tokens, into: h.data)
        let ws = BlockWorkspace(config: config, rows: n, batch: b, queries: t, keys: t)
        let positions = (0..<n).map { Int32($0 % t) }
        for (i, layer) in layers.enumerated() {
            observe(i, h.data)
            blockForward(layer, layerIndex: i, h: h.data, batch: b, length: t, positions: positions, cache: nil, ws: ws)
        }
        observe(layers.count, h.data)
        let logits = Tensor(zeros: [b, t, config.vocabSize])
        self.logits(fromHidden: h.data, rows: n, into: logits.data)
        return logits
    }
}
