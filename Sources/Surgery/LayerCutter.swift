// Removes decoder layers from a Hugging Face checkpoint directory and writes the complete smaller
// checkpoint: config.json edited, layer tensors renumbered, everything else (embeddings, final norm,
// lm_head when untied, tokenizer and generation files) carried over. Every refusal is decided before
// anything is written, and the new directory appears only once it is complete. A model card (README.md)
// and prune_cut.json say where the checkpoint came from.
import Checkpoint
import Foundation
import Support
import Tensor

/// Cuts layers out of one checkpoint.
public struct LayerCutter {
    /// The source checkpoint directory.
    public let model: URL

    public init(model: URL) {
        self.model = model
    }

    /// num_hidden_layers of the source's config.json, once the whole checkpoint has passed
    /// CheckpointValidation (a checkpoint no runtime loads is refused before layers are chosen).
    public func layerCount() throws -> Int {
        try CheckpointValidation.validate(model).config.numHiddenLayers
    }

    /// Writes the checkpoint without the layers in `drop` to `output`.
    /// - dtype: convert floating tensors to F32, F16 or BF16; nil keeps each tensor's bytes and dtype.
    /// - force: replace a non-empty `output`.
    /// - selection, command, tool: how the layers were chosen and by what, for the model card and prune_cut.json.
    /// - sourceName: the source as the user named it, for the card, prune_cut.json and the mergekit YAML (default: its path).
    /// - repair: what to do to the kept layer before each removed run (ReplaceMe, LaCo) besides deleting the run.
    public func cut(dropping drop: LayerSelection, to output: URL, dtype: SafetensorsDType? = nil,
                    force: Bool = false, selection: CutSelection? = nil, command: [String] = [],
                    tool: String = "prune", sourceName: String? = nil, repair: CutRepair? = nil) throws -> CutReport {
        if let dtype, ![.F32, .F16, .BF16].contains(dtype) {
            throw PruneError("--dtype", "\(dtype.rawValue) is not a supported output dtype (f32, bf16, f16)")
        }
        let rewriter = try CheckpointRewriter(model: model)
        let L = rewriter.llamaConfig.numHiddenLayers
        try drop.validate(layerCount: L)
        let kept = drop.complement(layerCount: L)
        let replaced = try repair?.replacedTensors(rewriter.store, dropped: drop.layers) ?? [:]
        let destination = try CheckpointDestination(output: output, model: model, force: force)

        let tensors = try Self.keptTensors(rewriter, layerCount: L, kept: kept, replacing: replaced)
        let config = CutConfig(rewriter.config, layerCount: L, kept: kept, dtype: dtype)
        let origin = CutOrigin(sourceModel: sourceName ?? model.path, layersBefore: L, dropped: drop.layers,
                               selection: selection ?? CutSelection(method: "layers", option: "--layers \(drop)", reason: "given explicitly"),
                               command: command, tool: tool, repair: repair?.name)
        // The source's README.md describes the uncut model: it goes into the new card, below the cut's facts.
        let card = CutModelCard.markdown(origin, parametersBefore: rewriter.parameterCount,
                                         parametersAfter: rewriter.parameterCount(of: tensors),
                                         sourceCard: try rewriter.companionText("README.md"))
        let torchDtype = (config.values["torch_dtype"] ?? config.values["dtype"]) as? String
        let mergekit = MergekitPassthrough.yaml(model: sourceName ?? model.path, kept: kept, dropped: drop, dtype: torchDtype)
        // mergekit leaves its config beside the checkpoint it builds under this name; so does a cut.
        var provenance = ["README.md": Data(card.utf8), CutOrigin.fileName: try origin.jsonData()]
        if !drop.layers.isEmpty { provenance[MergekitPassthrough.fileName] = Data(mergekit.utf8) }
        let result = try rewriter.write(tensors, config: config.values, dtype: dtype, extraFiles: provenance, to: destination)

        return CutReport(
            model: model.path, output: output.path, layersBefore: L, kept: kept, dropped: drop.layers,
            parametersBefore: rewriter.parameterCount, parametersAfter: result.parameters,
            dtypes: result.dtypes.map(\.rawValue), weightFiles: result.weightFiles,
            configKeysEdited: config.editedKeys, copiedFiles: result.copiedFiles,
            provenanceFiles: provenance.keys.sorted(), leftBehind: result.leftBehind, mergekitYAML: mergekit)
    }

    /// Every source tensor except the dropped layers', in the source's order, layer tensors renumbered
    /// contiguously (model.layers.{old}.rest → model.layers.{new}.rest); those named in `replacing` take its values.
    static func keptTensors(_ rewriter: CheckpointRewriter, layerCount L: Int, kept: [Int],
                            replacing: [String: () throws -> Tensor] = [:]) throws -> [RewrittenTensor] {
        let newIndex = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1, $0) })
        var out: [RewrittenTensor] = []
        for name in rewriter.tensorNames {
            guard let (layer, rest) = WeightNames.splitLayer(name) else {
                out.append(.copy(name))
                continue
            }
            guard layer < L else {
                let file = try rewriter.store.entry(name).file
                throw PruneError(file: file.url, "tensor \"\(name)\" belongs to layer \(layer) but config.json says num_hidden_layers = \(L)")
            }
            if let renumbered = newIndex[layer] {
                out.append(RewrittenTensor(name: WeightNames.layerPrefix(renumbered) + rest, source: name, values: replacing[name]))
            }
        }
        return out
    }
}
