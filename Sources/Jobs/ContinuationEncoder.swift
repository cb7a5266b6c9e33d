// How lm-eval-harness's Hugging Face backend turns a (context, continuation) request into token ids for a causal
// model (lm_eval/api/model.py `loglikelihood`, `_encode_pair`; lm_eval/models/huggingface.py `tok_encode`):
// - the context's trailing whitespace (Python's str.isspace) moves to the front of the continuation, so that a
//   word's leading space is encoded with the word;
// - the context alone and context + continuation are encoded; the continuation's ids are the whole's after as many
//   ids as the context alone has (a token spanning the boundary goes to the continuation; the context keeps its own
//   encoding);
// - encoding adds special tokens as the tokenizer does by default (BOS for Llama's SentencePiece, none for SmolLM2),
//   except for a text that already begins with the prefix token's text;
// - an empty context: the continuation is encoded without special tokens, and the prefix token (BOS, else EOS)
//   stands for the context, unless the continuation already begins with it (then that token is the context).
// The encoding may leave the context or continuation without ids; lm-eval asserts on that, the caller refuses it.
import Foundation
import Llama
import Tokenizers

/// Tokenization of scored continuations, as lm-eval's Hugging Face backend does it.
public struct ContinuationEncoder {
    public let tokenizer: Tokenizer

    public init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// lm-eval's token used as the context of an empty one: BOS, else EOS.
    public var prefixTokenID: Int32? { tokenizer.bosTokenID ?? tokenizer.eosTokenID }

    /// The ids of `continuation` scored after `context`.
    public func encode(context: String, continuation: String) -> ContinuationTokens {
        guard !context.isEmpty else {
            let ids = tokenizer.encode(continuation, addSpecialTokens: false)
            guard let prefix = prefixTokenID else { return ContinuationTokens(context: [], continuation: ids) }
            if ids.first == prefix { return ContinuationTokens(context: [prefix], continuation: Array(ids.dropFirst())) }
            return ContinuationTokens(context: [prefix], continuation: ids)
        }
        let scalars = context.unicodeScalars
        let kept = scalars.lastIndex { !Self.isPythonSpace($0) }.map { scalars.index(after: $0) } ?? scalars.startIndex
        let head = String(scalars[..<kept]), moved = String(scalars[kept...])
        let contextIDs = encode(head), whole = encode(head + moved + continuation)
        return ContinuationTokens(context: contextIDs, continuation: Array(whole.dropFirst(contextIDs.count)))
    }

    /// `tok_encode`: special tokens as the tokenizer adds them, none for a text beginning with the prefix token.
    func encode(_ text: String) -> [Int32] {
        let prefixText = prefixTokenID.map { tokenizer.pieces([$0])[0] }
        let startsWithPrefix = prefixText.map { !$0.isEmpty && text.unicodeScalars.starts(with: $0.unicodeScalars) } ?? false
        return tokenizer.encode(text, addSpecialTokens: !startsWithPrefix)
    }

    /// Python's str.isspace for one code point: Unicode White_Space, plus the separators U+001C…U+001F.
    static func isPythonSpace(_ s: Unicode.Scalar) -> Bool {
        s.properties.isWhitespace || (0x1C...0x1F).contains(s.value)
    }
}
