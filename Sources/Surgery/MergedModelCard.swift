// README.md of a checkpoint with trained weights folded in (`prune merge`, finetune's OUT/merged): what was merged,
// how it was trained when the trainer says so, and the base's own card below. When the base is a cut, its card's
// "It has not been retrained." is no longer true of this checkpoint and is replaced by a pointer to the top.
import Foundation

/// Renders the model card of a merge.
public enum MergedModelCard {
    /// - base: the base checkpoint as the user named it; adapter: the adapter directory as named (nil when the trained
    ///   weights came straight from a finetuning run); training: one sentence on how the weights were trained, if known;
    ///   facts: extra rows (name, value) for the table; baseCard: the base's README.md.
    public static func markdown(base: String, adapter: String?, training: String?, facts: [(String, String)], tool: String,
                                baseCard: String?) -> String {
        let (frontMatter, body) = CutModelCard.split(baseCard ?? "")
        let name = URL(fileURLWithPath: base).lastPathComponent
        var out = frontMatter
        out += "# \(name), retrained\n\n"
        out += "This checkpoint is `\(base)` retrained"
        out += adapter.map { ": the LoRA adapter `\($0)` is merged into its weights (W + scale·B·A, computed in float32)" } ?? ""
        out += ", written by `\(tool)`. It loads as a plain Hugging Face checkpoint; no adapter is needed at inference.\n"
        if let training { out += "\n\(training)\n" }
        out += "\n| | |\n|---|---|\n| base model | `\(base)` |\n"
        if let adapter { out += "| adapter | `\(adapter)` |\n" }
        for (k, v) in facts { out += "| \(k) | \(v) |\n" }
        out += "| tool | \(tool) |\n"
        let rest = body.replacingOccurrences(of: CutModelCard.notRetrained,
                                             with: "It was then retrained: see the top of this card.")
        if !rest.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            out += "\n## The base model's card\n\n" + rest
            if !rest.hasSuffix("\n") { out += "\n" }
        }
        return out
    }
}
