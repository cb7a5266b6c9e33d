// `prune tokenize` as a library call: each token of a text with its vocabulary piece and the text it adds,
// decoded in context as generation prints it (byte-level pieces such as "Ġupon" are unreadable otherwise).
import Foundation
import Tokenizers

/// One token of a tokenized text.
public struct TokenRow: Equatable, Sendable {
    public var id: Int32
    /// The vocabulary piece ("Ġupon", "▁upon").
    public var piece: String
    /// The text this token adds after the ones before it.
    public var text: String
    /// The token is part of a character that later tokens complete (it adds no text yet).
    public var partialCharacter: Bool
}

/// The tokenize flow.
public enum TokenizeJob {
    /// The rows of `text`'s tokens (`addSpecialTokens`: BOS/EOS where the tokenizer adds them).
    public static func rows(_ text: String, tokenizer: Tokenizer, addSpecialTokens: Bool = true) -> [TokenRow] {
        let ids = tokenizer.encode(text, addSpecialTokens: addSpecialTokens)
        let pieces = tokenizer.pieces(ids)
        var decoder = StreamingDecoder(tokenizer: tokenizer, prompt: [], skipSpecialTokens: false)
        return zip(ids, pieces).enumerated().map { i, pair in
            let added = decoder.append(pair.0)
            let partial = added.isEmpty && tokenizer.decode(Array(ids[...i]), skipSpecialTokens: false).hasSuffix("\u{FFFD}")
            return TokenRow(id: pair.0, piece: pair.1, text: added, partialCharacter: partial)
        }
    }
}
