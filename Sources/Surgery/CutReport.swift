// What a cut did: the layers kept and dropped (0-based, inclusive ranges), the parameter counts, the
// files written and copied, and the mergekit passthrough YAML that builds the same model.
import Foundation
import Support

/// The outcome of `LayerCutter.cut`.
public struct CutReport: Codable, Equatable, Sendable {
    /// The source checkpoint directory.
    public var model: String
    /// The cut checkpoint directory.
    public var output: String
    /// L before the cut.
    public var layersBefore: Int
    /// Source indices of the layers kept, ascending (new index = position in this list).
    public var kept: [Int]
    /// Source indices of the layers removed, ascending.
    public var dropped: [Int]
    public var parametersBefore: Int
    public var parametersAfter: Int
    /// Dtypes of the written tensors, the most common first.
    public var dtypes: [String]
    /// The safetensors files written (and the index when sharded).
    public var weightFiles: [String]
    /// config.json keys that changed.
    public var configKeysEdited: [String]
    /// Files copied unchanged (tokenizer, generation config, …).
    public var copiedFiles: [String]
    /// The model card and provenance JSON written beside the weights.
    public var provenanceFiles: [String]
    /// Entries of the source directory not carried over (other weight formats, subdirectories).
    public var leftBehind: [String]
    /// mergekit passthrough config building the same model.
    public var mergekitYAML: String

    enum CodingKeys: String, CodingKey {
        case model, output, layersBefore = "layers_before", kept, dropped
        case parametersBefore = "parameters_before", parametersAfter = "parameters_after", dtypes
        case weightFiles = "weight_files", configKeysEdited = "config_keys_edited", copiedFiles = "copied_files"
        case provenanceFiles = "provenance_files"
        case leftBehind = "left_behind", mergekitYAML = "mergekit_yaml"
    }

    /// A readable summary, lines ending in "\n".
    public var text: String {
        func count(_ n: Int) -> String { n >= 1_000_000 ? String(format: "%.2fM", Double(n) / 1e6) : String(n) }
        var out = "cut \(model) → \(output)\n"
        out += "layers: \(layersBefore) → \(kept.count)\n"
        out += "  dropped (0-based, inclusive): \(LayerSelection(dropped))  [\(dropped.map(String.init).joined(separator: ", "))]\n"
        out += "  kept:                         \(LayerSelection(kept))  [\(kept.map(String.init).joined(separator: ", "))]\n"
        let saved = parametersBefore > 0 ? 100 * Double(parametersBefore - parametersAfter) / Double(parametersBefore) : 0
        out += "parameters: \(count(parametersBefore)) → \(count(parametersAfter)) (\(String(format: "%.1f", saved))% fewer)\n"
        out += "weights: \(weightFiles.joined(separator: ", ")) (\(dtypes.joined(separator: ", ")))\n"
        out += "config.json: \(configKeysEdited.joined(separator: ", ")) updated, every other key kept\n"
        if !copiedFiles.isEmpty { out += "copied: \(copiedFiles.joined(separator: ", "))\n" }
        out += "provenance: \(provenanceFiles.joined(separator: ", "))\n"
        if !leftBehind.isEmpty { out += "not copied (other weight formats / subdirectories): \(leftBehind.joined(separator: ", "))\n" }
        out += "\n" + mergekitYAML
        return out
    }
}
