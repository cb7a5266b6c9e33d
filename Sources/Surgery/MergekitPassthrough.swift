// The mergekit config that builds the same cut model: a passthrough merge of the kept runs of layers.
// mergekit's layer_range is half-open, [a, b) = layers a…b−1, unlike prune's inclusive lists.
import Support

/// mergekit passthrough YAML for a cut.
public enum MergekitPassthrough {
    /// The name mergekit gives the config it leaves in its output directory.
    public static let fileName = "mergekit_config.yml"

    /// YAML keeping `kept` (ascending, 0-based) layers of `model`; `dtype` is transformers' name
    /// ("bfloat16", …) when known; `dropped` is quoted in the header comment.
    public static func yaml(model: String, kept: [Int], dropped: LayerSelection, dtype: String?) -> String {
        var out = """
        # mergekit passthrough equivalent of: prune cut \(model) --layers \(dropped)
        # mergekit's layer_range is half-open: [a, b) keeps layers a…b−1 (0-based). prune's ranges are inclusive.
        # Dropped layers (inclusive): \(dropped); kept: \(LayerSelection(kept)).
        slices:

        """
        for run in LayerSelection.ranges(kept) {
            out += """
              - sources:
                  - model: \(JSONText.quoted(model))
                    layer_range: [\(run.lowerBound), \(run.upperBound + 1)]

            """
        }
        out += "merge_method: passthrough\n"
        if let dtype { out += "dtype: \(dtype)\n" }
        return out
    }

}
