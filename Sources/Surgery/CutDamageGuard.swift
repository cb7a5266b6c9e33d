// Cuts that are almost always a mistake: layer 0 (it turns token embeddings into the representation every later
// layer reads), the last layer (it writes what the final norm and lm_head read), or more than half of the layers.
// `prune cut` and a recipe's `layers` strategy refuse them unless forced; the measured damage on SmolLM2-135M is in
// the README ("Cuts refused without --force").
import Foundation

public enum CutDamageGuard {
    /// Why dropping `layers` from a model of `layerCount` layers is refused without force, or nil when it is not.
    public static func refusal(dropping layers: [Int], layerCount L: Int) -> String? {
        var reasons: [String] = []
        if layers.contains(0) { reasons.append("drops layer 0 (alone, it takes SmolLM2-135M's perplexity from 22 to 60 788)") }
        if L > 1 && layers.contains(L - 1) {
            reasons.append("drops the last layer, \(L - 1) (alone, it takes SmolLM2-135M's perplexity from 22 to 177)")
        }
        if layers.count * 2 > L { reasons.append("drops \(layers.count) of \(L) layers, more than half") }
        guard !reasons.isEmpty else { return nil }
        return reasons.joined(separator: " and ")
    }
}
