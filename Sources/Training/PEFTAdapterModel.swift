// A PEFT LoRA adapter put on a LlamaModel (each adapted projection's `lora` set) and taken back off it for
// writing. LoRAAdapter computes scale = alpha/R; a use_rslora adapter (scale alpha/√R) is attached with
// the alpha that gives its scale, alpha·√R, and collected back by the inverse.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor

extension PEFTAdapter {
    /// Sets `linear.lora` on every projection the adapter adapts (copies of A and B, so training the model
    /// does not change this value), after checking the adapter fits the model. `directory` names the
    /// adapter in refusals. Projections it does not adapt keep whatever adapter they had.
    public func attach(to model: LlamaModel, directory: URL) throws {
        try validate(against: model.config, directory: directory)
        let alpha = config.scale * Float(config.rank)
        for w in weights {
            model.layers[w.layer].linear(w.projection).lora = LoRAAdapter(a: w.a.copy(), b: w.b.copy(), alpha: alpha)
        }
    }

    /// The adapters attached to `model`, as a PEFT adapter: target_modules are the projections that carry
    /// one, layers_to_transform the layers that do (nil when all). Refuses adapters PEFT's config cannot
    /// describe: ranks or alphas that differ between projections, or adapted projections that are not
    /// every target of every adapted layer.
    public init(collecting model: LlamaModel, dropout: Float = 0, useRSLoRA: Bool = false, baseModel: String? = nil) throws {
        var weights: [LoRAWeights] = []
        var rank: Int?, alpha: Float?
        for (i, layer) in model.layers.enumerated() {
            for p in Projection.allCases {
                guard let lora = layer.linear(p).lora else { continue }
                let name = WeightNames.projection(p, layer: i)
                if let rank, lora.rank != rank {
                    throw PruneError("LoRA adapter", "\(name) has rank \(lora.rank), others \(rank); PEFT's config needs one rank")
                }
                if let alpha, lora.alpha != alpha {
                    throw PruneError("LoRA adapter", "\(name) has alpha \(lora.alpha), others \(alpha); PEFT's config needs one alpha")
                }
                rank = lora.rank
                alpha = lora.alpha
                weights.append(LoRAWeights(layer: i, projection: p, a: lora.a.copy(), b: lora.b.copy()))
            }
        }
        guard let rank, let alpha else { throw PruneError("LoRA adapter", "the model has no LoRA adapters to save") }
        let targets = Projection.allCases.filter { p in weights.contains { $0.projection == p } }
        let layers = Array(Set(weights.map(\.layer))).sorted()
        guard weights.count == targets.count * layers.count else {
            throw PruneError("LoRA adapter", "the adapted projections differ between layers; PEFT's target_modules × layers_to_transform cannot describe them")
        }
        let peftAlpha = useRSLoRA ? alpha / Float(rank).squareRoot() : alpha
        let config = PEFTAdapterConfig(rank: rank, alpha: peftAlpha, dropout: dropout, targets: targets,
                                       layers: layers.count == model.layers.count ? nil : layers,
                                       useRSLoRA: useRSLoRA, baseModel: baseModel)
        self.init(config: config, weights: weights)
    }
}
