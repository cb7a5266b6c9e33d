// README.md of a cut checkpoint: the model card people see on a hub or in a directory listing. It states
// the facts of prune_cut.json in words; the source's own card follows, and its YAML front matter
// (license, tags, base model) stays at the top where hubs read it.
import Foundation

/// Renders the model card of a cut.
public enum CutModelCard {
    /// The sentence that says a cut was not retrained; a merge into the cut (MergedModelCard) replaces it.
    public static let notRetrained = "It has not been retrained."

    /// The card for `origin`; `sourceCard` is the source checkpoint's README.md, if it had one.
    public static func markdown(_ origin: CutOrigin, parametersBefore: Int, parametersAfter: Int, sourceCard: String?) -> String {
        let (frontMatter, sourceBody) = split(sourceCard ?? "")
        let L = origin.layersBefore, kept = origin.kept.count
        func list(_ xs: [Int]) -> String { xs.map(String.init).joined(separator: ", ") }
        var out = frontMatter
        if origin.dropped.isEmpty {
            // A rewrite that drops nothing (a dtype conversion): the source's card, retrained or not, stays true.
            out += "# \(URL(fileURLWithPath: origin.sourceModel).lastPathComponent), rewritten\n\n"
                + "This checkpoint is `\(origin.sourceModel)` with every layer kept, rewritten by `\(origin.tool)` "
                + "(`\(origin.selection.option)`: \(origin.selection.reason)). Its card follows.\n\n"
            return out + sourceBody + (sourceBody.hasSuffix("\n") || sourceBody.isEmpty ? "" : "\n")
        }
        let repaired = switch origin.repair {
        case "replaceme"?: ", the layer before each removed block taking a linear map of their effect in its down_proj (ReplaceMe)"
        case "laco"?: ", each removed block's parameter differences merged into the layer before it (LaCo)"
        default: ""
        }
        out += """
        # \(URL(fileURLWithPath: origin.sourceModel).lastPathComponent), \(kept) of \(L) layers

        This checkpoint is `\(origin.sourceModel)` with \(origin.dropped.count) of its \(L) decoder layers \
        removed by `\(origin.tool)`\(repaired). Everything else (embeddings, final norm, lm_head, tokenizer) is the \
        source's, unchanged; the remaining layers are renumbered 0…\(kept - 1). \(notRetrained)

        | | |
        |---|---|
        | source model | `\(origin.sourceModel)` |
        | layers dropped (0-based, inclusive) | \(origin.droppedRanges) (\(list(origin.dropped))) |
        | layers kept (source numbering) | \(origin.keptRanges) (\(list(origin.kept))) |
        | how they were chosen | `\(origin.selection.option)`: \(origin.selection.reason) |

        """
        if let analysis = origin.selection.analysis { out += "| analysis | `\(analysis)` |\n" }
        if let dataset = origin.selection.dataset { out += "| calibration data | `\(dataset)` |\n" }
        out += """
        | parameters | \(parametersBefore) → \(parametersAfter) |
        | tool | \(origin.tool) |

        Made with:

        ```sh
        \(origin.command)
        ```

        The same facts, for programs: `\(CutOrigin.fileName)`.

        """
        if !sourceBody.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            out += "\n## The source model's card\n\n" + sourceBody
            if !sourceBody.hasSuffix("\n") { out += "\n" }
        }
        return out
    }

    /// A card's YAML front matter ("---" … "---" at the very top, with its final newline) and the rest.
    public static func split(_ card: String) -> (frontMatter: String, body: String) {
        guard card.hasPrefix("---\n") else { return ("", card) }
        let rest = card.dropFirst(4)
        guard let end = rest.range(of: "\n---\n") ?? (rest.hasPrefix("---\n") ? rest.range(of: "---\n") : nil) else {
            return ("", card)
        }
        return (String(card[..<end.upperBound]) + "\n", String(card[end.upperBound...]))
    }
}
