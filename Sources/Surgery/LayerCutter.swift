// Removes decoder layers from a Hugging Face checkpoint directory and writes the complete smaller
// checkpoint: config.json edited, layer tensors renumbered, everything else (embeddings, final norm,
// lm_head when untied, tokenizer and generation files) carried over. Every refusal is decided before
// anything is written, and the new directory appears only once it is complete. A model card (README.md)
// and prune_cut.json say where the checkpoint came from.
import Checkpoint
import Foundation
import Support

/// Cuts layers out of one checkpoint.
public struct LayerCutter {
    /// The source checkpoint directory.
    public let model: URL

    public init(model: URL) {
        self.model = model
    }

    /// num_hidden_layers of the source's config.json.
    public func layerCount() throws -> Int {
        try checkModelDirectory()
        return try Self.layerCount(try ConfigJSON.read(configURL), configURL)
    }

    func checkModelDirectory() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PruneError(file: model, "model directory not found")
        }
    }

    var configURL: URL { model.appendingPathComponent("config.json") }

    static func layerCount(_ config: [String: Any], _ url: URL) throws -> Int {
        guard let n = config["num_hidden_layers"] as? NSNumber, let L = Int(exactly: n.doubleValue), L > 0 else {
            throw PruneError(file: url, "no positive integer \"num_hidden_layers\"")
        }
        return L
    }

    /// Writes the checkpoint without the layers in `drop` to `output`.
    /// - dtype: convert floating tensors to F32, F16 or BF16; nil keeps each tensor's bytes and dtype.
    /// - force: replace a non-empty `output`.
    /// - selection, command, tool: how the layers were chosen and by what, for the model card and prune_cut.json.
    public func cut(dropping drop: LayerSelection, to output: URL, dtype: SafetensorsDType? = nil,
                    force: Bool = false, selection: CutSelection? = nil, command: [String] = [],
                    tool: String = "prune") throws -> CutReport {
        if let dtype, ![.F32, .F16, .BF16].contains(dtype) {
            throw PruneError("--dtype", "\(dtype.rawValue) is not a supported output dtype (f32, bf16, f16)")
        }
        try checkModelDirectory()
        let source = try ConfigJSON.read(configURL)
        let L = try Self.layerCount(source, configURL)
        try drop.validate(layerCount: L)
        let kept = drop.complement(layerCount: L)
        let destination = try CutDestination(output: output, model: model, force: force)

        let store = try CheckpointTensors(directory: model)
        let plan = try CutTensorPlan(store: store, layerCount: L, kept: kept, dtype: dtype)
        let config = CutConfig(source, layerCount: L, kept: kept, torchDtype: dtype.flatMap(CutConfig.torchName))
        let weightFiles = Set(store.files.map { $0.url.lastPathComponent })
        let companions = try CompanionFiles.sort(model, weightFiles: weightFiles)
        let sourceIndex = store.isSharded ? try ConfigJSON.read(model.appendingPathComponent("model.safetensors.index.json")) : nil
        let origin = CutOrigin(sourceModel: model.path, layersBefore: L, dropped: drop.layers,
                               selection: selection ?? CutSelection(method: "layers", option: "--layers \(drop)", reason: "given explicitly"),
                               command: command, tool: tool)
        // The source's README.md describes the uncut model: it goes into the new card, below the cut's facts.
        let sourceCardURL = companions.copied.first { $0.lastPathComponent == "README.md" }
        let sourceCard = try sourceCardURL.map { url -> String in
            guard let data = FileManager.default.contents(atPath: url.path) else { throw PruneError(file: url, "cannot read") }
            return String(decoding: data, as: UTF8.self)
        }
        let card = CutModelCard.markdown(origin, parametersBefore: plan.parametersBefore, parametersAfter: plan.parametersAfter,
                                         sourceCard: sourceCard)
        let copied = companions.copied.filter { ![CutOrigin.fileName, "README.md"].contains($0.lastPathComponent) }

        try destination.write { directory in
            try AtomicFile.write(try config.data(), to: directory.appendingPathComponent("config.json"))
            for file in copied {
                // Bytes, not copyItem: a read-only source must not give a read-only copy.
                guard let data = FileManager.default.contents(atPath: file.path) else { throw PruneError(file: file, "cannot read") }
                try AtomicFile.write(data, to: directory.appendingPathComponent(file.lastPathComponent))
            }
            try plan.write(into: directory, sourceIndex: sourceIndex)
            try AtomicFile.write(Data(card.utf8), to: directory.appendingPathComponent("README.md"))
            try AtomicFile.write(try origin.jsonData(), to: directory.appendingPathComponent(CutOrigin.fileName))
        }

        let torchDtype = (config.values["torch_dtype"] ?? config.values["dtype"]) as? String
        return CutReport(
            model: model.path, output: output.path, layersBefore: L, kept: kept, dropped: drop.layers,
            parametersBefore: plan.parametersBefore, parametersAfter: plan.parametersAfter,
            dtypes: plan.dtypes.map(\.rawValue),
            weightFiles: plan.shards.map(\.name) + (plan.sharded ? ["model.safetensors.index.json"] : []),
            configKeysEdited: config.editedKeys, copiedFiles: copied.map(\.lastPathComponent),
            provenanceFiles: ["README.md", CutOrigin.fileName],
            leftBehind: companions.leftBehind,
            mergekitYAML: MergekitPassthrough.yaml(model: model.path, kept: kept, dropped: drop, dtype: torchDtype))
    }
}
