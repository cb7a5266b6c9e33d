// What a finished finetuning run leaves for the tools users already have: OUT/adapter, the LoRA adapters in
// PEFT's format (PeftModel.from_pretrained loads it onto the base), and OUT/merged, a complete Hugging Face
// checkpoint (every config.json key, tokenizer files, sharding and dtype of the base unless --dtype) with the
// trained weights in place and each adapter folded in as W + scale·B·A, computed in Float32.
import Checkpoint
import Foundation
import Jobs
import Llama
import Support
import Surgery
import Tensor
import Training

/// Writing a finetuned model's adapter and merged checkpoint.
public enum FinetuneExport {
    /// Writes `directory` (replacing it) in PEFT's format from the adapters attached to `model`.
    /// The adapter records the base's fingerprint, so that our loaders refuse it on another base.
    public static func adapter(of model: LlamaModel, dropout: Double, baseModel: String, to directory: URL) throws {
        var adapter = try PEFTAdapter(collecting: model, dropout: Float(dropout), baseModel: baseModel)
        adapter.base = try BaseFingerprint.of(URL(fileURLWithPath: baseModel))
        try adapter.write(to: directory, force: true)
    }

    /// Writes `directory` (replacing it): the base checkpoint at `base` with the trainable set's full parameters
    /// replaced and the model's adapters merged in. Returns the merged tensor count.
    @discardableResult
    /// `card`: how the weights were trained, for the model card (README.md) that replaces the base's.
    public static func merged(trainable: TrainableSet, base: URL, dtype: SafetensorsDType?, card: Card? = nil,
                              to directory: URL) throws -> Int {
        let model = trainable.model
        let rewriter = try CheckpointRewriter(model: base)
        let store = rewriter.store
        var replaced: [String: () throws -> Tensor] = [:]
        for p in trainable.parameters where !p.name.hasPrefix("base_model.") {
            let value = p.value
            replaced[p.name] = { value.copy() }
        }
        for (l, layer) in model.layers.enumerated() {
            for projection in Projection.allCases {
                guard let lora = layer.linear(projection).lora else { continue }
                let name = WeightNames.projection(projection, layer: l)
                let weights = LoRAWeights(layer: l, projection: projection, a: lora.a.copy(), b: lora.b.copy())
                let trained = replaced[name]
                let parallelism = model.parallelism
                replaced[name] = {
                    let w = try trained?() ?? store.tensor(name)
                    return try LoRAMerger.merged(w, weights, scale: lora.scale, parallelism: parallelism)
                }
            }
        }
        for name in replaced.keys where !store.contains(name) {
            throw PruneError(file: base, "checkpoint has no tensor \"\(name)\" to write the trained value into")
        }
        let tensors: [RewrittenTensor] = rewriter.tensorNames.map { name in
            replaced[name].map { RewrittenTensor.replaced(name, by: $0) } ?? .copy(name)
        }
        let (config, _) = CheckpointRewriter.recordingDtype(rewriter.config, dtype)
        // The old directory stays until the new one is complete (CheckpointDestination renames it into place).
        let destination = try CheckpointDestination(output: directory, model: base, force: true)
        let readme = MergedModelCard.markdown(base: card?.base ?? base.path, adapter: nil, training: card?.training, facts: card?.facts ?? [],
                                              tool: card?.tool ?? "finetune \(SystemReport.version)",
                                              baseCard: try rewriter.companionText("README.md"))
        _ = try rewriter.write(tensors, config: config, dtype: dtype, extraFiles: ["README.md": Data(readme.utf8)], to: destination)
        return replaced.count
    }

    /// What the merged checkpoint's model card says of its training.
    public struct Card: Sendable {
        /// The base as the user named it.
        public var base: String
        /// One paragraph: by what, how long, on which data.
        public var training: String
        public var facts: [(String, String)]
        public var tool: String

        /// The card of a finetuning run of `options` that exported the weights of `step`.
        public init(options o: FinetuneOptions, step: Int, heldOutBefore: Double?, heldOutAfter: Double?) {
            base = o.model
            tool = "finetune \(SystemReport.version)"
            var what: [String] = []
            if o.lora {
                what.append("LoRA (r = \(o.rank), alpha = \(o.alpha), on \(o.targets.map(\.rawValue).joined(separator: ", "))"
                            + (o.loraLayers.map { " of layers \(LayerSelection($0))" } ?? "") + ", merged in)")
            }
            if !o.trainLayers.isEmpty { what.append("layers \(LayerSelection(o.trainLayers)) trained in full") }
            if o.trainLMHead { what.append("lm_head and the final norm trained") }
            let distilled = o.teacher.map { teacher in
                "`\(teacher)` with α = \(o.distillWeight ?? .nan), τ = \(o.distillTemperature ?? .nan)"
                    + ((o.distillHidden ?? 0) > 0 ? ", hidden-state weight β = \(o.distillHidden ?? 0)" : "")
            }
            if let distilled { what.append("distilled from \(distilled): loss (1 − α)·CE + α·τ²·KL(teacher ‖ student)") }
            training = "Trained by `finetune` for \(step) \(step == 1 ? "step" : "steps") on `\(o.dataset)`: "
                + what.joined(separator: "; ") + "."
            facts = [("training data", "`\(o.dataset)`"), ("steps", "\(step) (batch \(o.batchSize) × \(o.context) tokens"
                      + (o.gradAccum > 1 ? ", grad-accum \(o.gradAccum)" : "") + ", lr \(o.lr))")]
            if let distilled { facts.append(("teacher", distilled)) }
            if let heldOutBefore, let heldOutAfter {
                facts.append(("held-out loss", String(format: "%.4f → %.4f (in memory, before the merge)", heldOutBefore, heldOutAfter)))
            }
        }
    }
}
