// A checkpoint directory as one GGUF file llama.cpp loads (`prune export MODEL --gguf OUT.gguf`): the checkpoint is
// validated as every command validates it, its config becomes the llama.* keys (GGUFMetadata), its tokenizer the
// tokenizer.* keys (GGUFVocabulary), and every tensor the config implies is written under llama.cpp's name
// (GGUFTensorNames), q and k rows reordered for llama.cpp's rope (GGUFRopeLayout), in the type --dtype gives it
// (GGUFFileType); llama3 RoPE adds rope_freqs. A tied model writes no output tensor (llama.cpp reuses token_embd).
// Tensors are read, converted and written one at a time, so memory holds one tensor, not the model.
import Checkpoint
import Foundation
import Support
import Tensor

/// Writing a checkpoint as a GGUF model file.
public enum GGUFModelExport {
    /// Writes the checkpoint in `model` to `output` as `fileType` (nil: the type that keeps the stored weights exactly:
    /// f32, f16 or bf16). An existing `output` is replaced only with `force`.
    public static func write(model: URL, to output: URL, fileType: GGUFFileType?, force: Bool) throws -> GGUFExportReport {
        try checkDestination(output, force: force)
        let checkpoint = try CheckpointValidation.validate(model)
        let c = checkpoint.config, store = checkpoint.tensors
        let type = try fileType ?? GGUFFileType(keeping: store.entry(WeightNames.embedding).entry.dtype)
        let metadata = try metadata(model: model, config: c, fileType: type)

        var items: [GGUFTensorItem] = []
        for (hf, shape) in CheckpointValidation.expectedTensors(c) {
            guard let name = GGUFTensorNames.name(forHF: hf) else { throw PruneError(file: model, "tensor \"\(hf)\" has no GGUF name") }
            let heads: Int? = switch GGUFTensorNames.projection(ofHF: hf) {
            case .q: c.numAttentionHeads
            case .k: c.numKeyValueHeads
            default: nil
            }
            items.append(GGUFTensorItem(name: name, shape: shape, type: type.tensorType(shape: shape)) {
                let t = try store.tensor(hf, shape: shape)
                // Pages read so far leave the resident set: memory stays at about one tensor.
                store.files.forEach { $0.dropResidentPages() }
                return heads.map { GGUFRopeLayout.interleaved(t, heads: $0) } ?? t
            })
            if hf == WeightNames.embedding, let divisors = GGUFMetadata.ropeFrequencyDivisors(c) {
                items.append(GGUFTensorItem(name: GGUFTensorNames.ropeFrequencies, shape: [divisors.count], type: .f32) {
                    Tensor(shape: [divisors.count], values: divisors)
                })
            }
        }
        try GGUFWriter.write(metadata: metadata, tensors: items, to: output)
        return GGUFExportReport(output: output, kind: "model", fileType: type, items: items)
    }

    /// Refuses, before anything is computed, a checkpoint whose config or tokenizer GGUF cannot carry (what `write`
    /// would refuse only after reading them): for a run that exports at its end.
    public static func checkExportable(model: URL) throws {
        _ = try metadata(model: model, config: LlamaConfig.load(model.appendingPathComponent("config.json")), fileType: .f32)
    }

    /// The general.*, llama.* and tokenizer.* keys of the checkpoint in `model`.
    static func metadata(model: URL, config c: LlamaConfig, fileType: GGUFFileType) throws -> [(key: String, value: GGUFValue)] {
        try GGUFMetadata.model(c, name: model.standardizedFileURL.lastPathComponent, fileType: fileType,
                               configURL: model.appendingPathComponent("config.json"))
            + GGUFVocabulary.metadata(directory: model, config: c)
    }

    /// Refuses an output that is a directory, or that exists without `force`.
    static func checkDestination(_ output: URL, force: Bool) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: output.path, isDirectory: &isDirectory) else { return }
        if isDirectory.boolValue { throw PruneError(file: output, "is a directory; give the .gguf file to write") }
        if !force { throw PruneError(file: output, "already exists (--force to replace it)") }
    }
}
