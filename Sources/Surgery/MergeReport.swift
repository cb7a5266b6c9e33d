// What a merge did: the adapter's settings, which projections of which layers changed, the files written
// and copied.
import Foundation
import Support

/// The outcome of `LoRAMerger.merge`.
public struct MergeReport: Codable, Equatable, Sendable {
    public var model: String
    public var adapter: String
    public var output: String
    /// r.
    public var rank: Int
    /// lora_alpha.
    public var alpha: Double
    /// The factor of B·A: alpha/r, or alpha/√r with use_rslora.
    public var scale: Double
    public var useRSLoRA: Bool
    /// Projections adapted, HF names.
    public var targets: [String]
    /// 0-based layers adapted.
    public var layers: [Int]
    /// Weight tensors changed.
    public var mergedTensors: Int
    /// Dtypes of the written tensors, the most common first.
    public var dtypes: [String]
    /// The safetensors files written (and the index when sharded).
    public var weightFiles: [String]
    /// config.json keys that changed.
    public var configKeysEdited: [String]
    /// Files copied unchanged (tokenizer, generation config, …).
    public var copiedFiles: [String]
    /// Entries of the base directory not carried over (other weight formats, subdirectories).
    public var leftBehind: [String]

    enum CodingKeys: String, CodingKey {
        case model, adapter, output, rank = "r", alpha = "lora_alpha", scale, useRSLoRA = "use_rslora", targets, layers
        case mergedTensors = "merged_tensors", dtypes, weightFiles = "weight_files", configKeysEdited = "config_keys_edited"
        case copiedFiles = "copied_files", leftBehind = "left_behind"
    }

    /// A readable summary, lines ending in "\n".
    public var text: String {
        var out = "merge \(adapter) into \(model) → \(output)\n"
        out += "LoRA r=\(rank), alpha=\(alpha)\(useRSLoRA ? " (rslora)" : ""), scale \(scale): \(targets.joined(separator: ", "))\n"
        out += "layers (0-based, inclusive): \(LayerSelection(layers)); \(mergedTensors) weights changed, every other tensor copied\n"
        out += "weights: \(weightFiles.joined(separator: ", ")) (\(dtypes.joined(separator: ", ")))\n"
        out += "config.json: " + (configKeysEdited.isEmpty ? "unchanged\n" : "\(configKeysEdited.joined(separator: ", ")) updated, every other key kept\n")
        if !copiedFiles.isEmpty { out += "copied: \(copiedFiles.joined(separator: ", "))\n" }
        if !leftBehind.isEmpty { out += "not copied (other weight formats / subdirectories): \(leftBehind.joined(separator: ", "))\n" }
        return out
    }
}
