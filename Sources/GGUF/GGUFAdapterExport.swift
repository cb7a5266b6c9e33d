// A PEFT LoRA adapter as a GGUF adapter llama.cpp applies with --lora (`prune export MODEL --adapter DIR --gguf OUT`),
// in convert_lora_to_gguf.py's layout: general.type adapter, adapter.type lora, adapter.lora.alpha, and per adapted
// projection blk.<i>.<stem>.weight.lora_a (A, (R, in)) and .lora_b (B, (out, R)). The adapter is checked against its
// base (MODEL) as merge checks it; B of q and k gets the base's rope row order (GGUFRopeLayout), A is unchanged.
// llama.cpp scales B·A by alpha / r; an rsLoRA adapter (alpha / √r) is written with alpha·√r so that the scale holds.
// Adapters PEFT cannot express as plain LoRA on the seven projections are refused when read (PEFTAdapter).
// Dimension glossary: R rank, H query heads, G kv heads.
import Checkpoint
import Foundation
import Support
import Tensor

/// Writing a PEFT adapter as a GGUF adapter file.
public enum GGUFAdapterExport {
    /// Writes the adapter in `adapter` (trained on the checkpoint in `model`) to `output` as `fileType` (nil: f32).
    /// An existing `output`, or an adapter that records another base, is accepted only with `force`.
    public static func write(adapter: URL, model: URL, to output: URL, fileType: GGUFFileType?, force: Bool) throws -> GGUFExportReport {
        try GGUFModelExport.checkDestination(output, force: force)
        let config = try LlamaConfig.load(model.appendingPathComponent("config.json"))
        let peft = try PEFTAdapter.read(adapter)
        try peft.checkBase(model, directory: adapter, force: force)
        try peft.validate(against: config, directory: adapter)
        let type = fileType ?? .f32
        var items: [GGUFTensorItem] = []
        for w in peft.weights {
            let stem = GGUFTensorNames.projection(w.projection, layer: w.layer)
            let heads: Int? = switch w.projection {
            case .q: config.numAttentionHeads
            case .k: config.numKeyValueHeads
            default: nil
            }
            items.append(GGUFTensorItem(name: stem + ".lora_a", shape: w.a.shape, type: type.tensorType(shape: w.a.shape)) { w.a })
            items.append(GGUFTensorItem(name: stem + ".lora_b", shape: w.b.shape, type: type.tensorType(shape: w.b.shape)) {
                heads.map { GGUFRopeLayout.interleaved(w.b, heads: $0) } ?? w.b
            })
        }
        let alpha = peft.config.useRSLoRA ? peft.config.alpha * Float(peft.config.rank).squareRoot() : peft.config.alpha
        let metadata = GGUFMetadata.adapter(name: adapter.standardizedFileURL.lastPathComponent, alpha: alpha, fileType: type)
        try GGUFWriter.write(metadata: metadata, tensors: items, to: output)
        return GGUFExportReport(output: output, kind: "adapter", fileType: type, items: items)
    }
}
