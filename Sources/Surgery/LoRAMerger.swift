// Folds a PEFT LoRA adapter into the weights of its base checkpoint: W' = W + scale·B·A for every adapted
// projection, computed in Float32 and stored in the base tensor's dtype (or a requested one); every other
// tensor is copied byte for byte, config.json keeps every key (only the dtype keys follow a conversion),
// and the result is laid out like the base (shards, companion files) through CheckpointRewriter.
// Dimension glossary: O out features, I in features, R rank.
import Checkpoint
import Foundation
import Support
import Tensor

/// Merges one adapter into one checkpoint.
public struct LoRAMerger {
    /// The base checkpoint directory.
    public let model: URL
    /// The PEFT adapter directory.
    public let adapter: URL

    /// Threads for the merge products.
    public let parallelism: Parallelism

    public init(model: URL, adapter: URL, parallelism: Parallelism = .allCores) {
        self.parallelism = parallelism
        self.model = model
        self.adapter = adapter
    }

    /// Writes the merged checkpoint to `output`. Every refusal (adapter for another shape or layer count,
    /// missing files, an existing non-empty `output` without `force`) comes before anything is written.
    /// - dtype: store the floating tensors as F32, F16 or BF16; nil keeps each base tensor's dtype.
    /// - names: the base and adapter as the user wrote them, for the model card (default: their paths); tool: what made it.
    public func merge(to output: URL, dtype: SafetensorsDType? = nil, force: Bool = false,
                      names: (base: String, adapter: String)? = nil, tool: String = "prune merge") throws -> MergeReport {
        if let dtype, ![.F32, .F16, .BF16].contains(dtype) {
            throw PruneError("--dtype", "\(dtype.rawValue) is not a supported output dtype (f32, bf16, f16)")
        }
        let rewriter = try CheckpointRewriter(model: model)
        let modelConfig = rewriter.llamaConfig
        let peft = try PEFTAdapter.read(adapter)
        try peft.checkBase(model, directory: adapter, force: force)
        try peft.validate(against: modelConfig, directory: adapter)
        let destination = try CheckpointDestination(output: output, inputs: [(model, "model"), (adapter, "adapter")], force: force)

        let scale = peft.config.scale
        var update: [String: LoRAWeights] = [:]
        for w in peft.weights {
            let name = WeightNames.projection(w.projection, layer: w.layer)
            guard rewriter.store.contains(name) else { throw PruneError(file: model, "checkpoint has no tensor \"\(name)\" to merge into") }
            update[name] = w
        }
        let store = rewriter.store
        let tensors: [RewrittenTensor] = rewriter.tensorNames.map { name in
            guard let w = update[name] else { return .copy(name) }
            return .replaced(name) { try Self.merged(try store.tensor(name), w, scale: scale, parallelism: parallelism) }
        }
        let (config, edited) = CheckpointRewriter.recordingDtype(rewriter.config, dtype)
        let card = MergedModelCard.markdown(
            base: names?.base ?? model.path, adapter: names?.adapter ?? adapter.path, training: nil,
            facts: [("LoRA", "r = \(peft.config.rank), lora_alpha = \(peft.config.alpha)\(peft.config.useRSLoRA ? " (rsLoRA)" : ""), on "
                     + peft.config.targets.map(\.rawValue).joined(separator: ", "))],
            tool: tool, baseCard: try rewriter.companionText("README.md"))
        let result = try rewriter.write(tensors, config: config, dtype: dtype, extraFiles: ["README.md": Data(card.utf8)], to: destination)
        return MergeReport(
            model: model.path, adapter: adapter.path, output: output.path, rank: peft.config.rank,
            alpha: Double(peft.config.alpha), scale: Double(scale), useRSLoRA: peft.config.useRSLoRA,
            targets: peft.config.targets.map(\.rawValue), layers: Array(Set(peft.weights.map(\.layer))).sorted(),
            mergedTensors: update.count, dtypes: result.dtypes.map(\.rawValue), weightFiles: result.weightFiles,
            configKeysEdited: edited, copiedFiles: result.copiedFiles, leftBehind: result.leftBehind)
    }

    /// W (O, I) + scale · B (O, R) · A (R, I), in place on the Float32 copy `w`.
    public static func merged(_ w: Tensor, _ lora: LoRAWeights, scale: Float, parallelism: Parallelism) throws -> Tensor {
        let O = lora.b.shape[0], R = lora.a.shape[0], I = lora.a.shape[1]
        guard w.shape == [O, I], lora.b.shape == [O, R] else {
            throw PruneError("", "cannot merge B \(lora.b.shape) · A \(lora.a.shape) into a weight of shape \(w.shape)")
        }
        Gemm.multiply(transA: false, transB: false, m: O, n: I, k: R, alpha: scale, a: lora.b.data, lda: R,
                      b: lora.a.data, ldb: I, beta: 1, c: w.data, ldc: I, parallelism: parallelism)
        return w
    }
}
