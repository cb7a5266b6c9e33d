// A reduced draft vocabulary (FR-Spec, Zhao et al. 2025): the draft's head scores only the N most frequent
// tokens of a corpus, so a draft step reads N rows of the lm_head instead of V (SmolLM2's head is 21 % of its
// weights). Verification keeps the full head, so the output is still the full model's: a token outside the
// draft's vocabulary is never drafted, only produced by the verifier.
// Dimension glossary: N draft tokens, V vocabulary, C model dim.
import Foundation
import Llama
import Tensor

/// The tokens a draft may propose and the lm_head rows that score them.
public struct DraftVocabulary {
    /// The token id of each row of `head`.
    public let ids: [Int32]
    /// (N, C): those rows of the model's lm_head, in its stored element type.
    public let head: Weight

    /// The draft vocabulary of `ids` (distinct, inside the model's vocabulary) for `model`.
    public init(model: LlamaModel, ids: [Int32]) {
        precondition(!ids.isEmpty && Set(ids).count == ids.count, "a draft vocabulary of distinct ids")
        precondition(ids.allSatisfy { $0 >= 0 && Int($0) < model.config.vocabSize }, "a draft id outside the vocabulary")
        self.ids = ids
        head = model.lmHead.selectingRows(ids.map(Int.init))
    }

    /// The `n` most frequent ids by `counts` (counts[id] occurrences in a corpus), the lower id first among equal
    /// counts, always including `required` (end-of-sequence ids: a draft that cannot propose the end stops late).
    public static func mostFrequent(_ n: Int, counts: [Int], required: [Int32] = []) -> [Int32] {
        precondition(n >= 1, "a draft vocabulary of at least one token")
        let ranked = counts.indices.sorted { counts[$0] > counts[$1] || (counts[$0] == counts[$1] && $0 < $1) }
        var picked = required.filter { $0 >= 0 && Int($0) < counts.count }
        var seen = Set(picked)
        for id in ranked where picked.count < n {
            let t = Int32(id)
            if seen.insert(t).inserted { picked.append(t) }
        }
        return picked
    }
}
