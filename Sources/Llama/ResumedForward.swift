// The forward pass started from a captured residual stream instead of from token ids. With layer i left
// out, layers 0…i−1 compute exactly what the full pass already computed, so the removal scan starts
// from h_i and saves on average half of every extra pass.
// Dimension glossary: B batch, T tokens, N = B·T rows, C model dim, V vocab, L layers.
import Foundation
import Tensor

extension LlamaModel {
    /// Logits (B, T, V) of layers `firstLayer`…L−1 (except those in `skipping`), the final norm and
    /// lm_head applied to `hidden` (B, T, C), the residual stream entering layer `firstLayer` of
    /// sequences that start at position 0. `hidden` is left unchanged.
    public func logits(resumingFrom hidden: Tensor, atLayer firstLayer: Int, batch b: Int, length t: Int,
                       skipping: Set<Int> = []) -> Tensor {
        let C = config.hiddenSize, n = b * t
        precondition(hidden.count == n * C, "hidden state has \(hidden.count) values, B·T·C = \(n * C)")
        precondition(firstLayer >= 0 && firstLayer <= layers.count, "layer \(firstLayer) outside 0…\(layers.count)")
        let h = hidden.copy()   // the caller's state is reused for other removals
        runLayers(from: firstLayer, on: h, batch: b, length: t, skipping: skipping)
        let logits = Tensor(zeros: [b, t, config.vocabSize])
        self.logits(fromHidden: h.data, rows: n, into: logits.data)
        return logits
    }
}
