// The tokenizer interface every command uses, and the rule that picks an implementation from a
// checkpoint directory: tokenizer.model → SentencePiece, else tokenizer.json → byte-level BPE.
import Foundation

/// Text ↔ token ids, as the checkpoint's Hugging Face tokenizer does it.
public protocol Tokenizer: AnyObject {
    /// Number of ids the tokenizer can produce.
    var vocabularySize: Int { get }
    /// Beginning-of-sequence id, if the tokenizer has one.
    var bosTokenID: Int32? { get }
    /// End-of-sequence id, if the tokenizer has one.
    var eosTokenID: Int32? { get }
    /// Whether `encode(_:addSpecialTokens: true)` prepends BOS (transformers' `add_bos_token`).
    var addsBOS: Bool { get }
    /// The Jinja chat template from tokenizer_config.json, if any.
    var chatTemplate: String? { get }
    /// Token ids of `text`; with `addSpecialTokens` BOS is prepended exactly when transformers does.
    func encode(_ text: String, addSpecialTokens: Bool) -> [Int32]
    /// Text of `ids` (special tokens included as their text unless `skipSpecialTokens`).
    func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String
    /// The vocabulary string of each id (a "piece" or "token").
    func pieces(_ ids: [Int32]) -> [String]
}

extension Tokenizer {
    public func encode(_ text: String) -> [Int32] { encode(text, addSpecialTokens: true) }
    public func decode(_ ids: [Int32]) -> String { decode(ids, skipSpecialTokens: false) }
}
