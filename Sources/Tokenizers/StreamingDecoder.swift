// Generated text streamed as transformers decodes it: prompt and continuation ids decoded together, and
// the text beyond the decoded prompt handed out as it grows. Decoding the continuation alone is wrong:
// SentencePiece drops the leading space of a decode ("Once" + "▁upon" would print "Onceupon"), and a
// byte-level token can end in the middle of a UTF-8 character.
import Foundation

/// Turns generated ids into text pieces to print, one call per id.
public struct StreamingDecoder {
    public let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    /// The decoded prompt: the text the continuation follows.
    public let decodedPrompt: String
    /// Prompt and continuation ids so far.
    private var ids: [Int32]
    /// Unicode scalars of the decoded prompt plus all text handed out (scalars, not Characters: a combining
    /// mark arriving later must not change what was already printed).
    private var emitted: [Unicode.Scalar]

    public init(tokenizer: Tokenizer, prompt: [Int32], skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
        ids = prompt
        decodedPrompt = tokenizer.decode(prompt, skipSpecialTokens: skipSpecialTokens)
        emitted = Array(decodedPrompt.unicodeScalars)
    }

    /// Adds one generated id; returns the new text to print (empty while a character is incomplete).
    public mutating func append(_ id: Int32) -> String {
        ids.append(id)
        return take(final: false)
    }

    /// What is left once generation has stopped (an incomplete character at the end, as a replacement mark).
    public mutating func finish() -> String { take(final: true) }

    private mutating func take(final: Bool) -> String {
        var text = Array(tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens).unicodeScalars)
        // A trailing U+FFFD is usually a character whose remaining bytes are still to come: hold it back.
        if !final { while text.last == "\u{FFFD}" && text.count > emitted.count { text.removeLast() } }
        // Text already printed cannot be taken back; if a later token rewrote it, wait for agreement.
        guard text.count > emitted.count, text.starts(with: emitted) else { return "" }
        let new = text[emitted.count...]
        emitted = text
        var s = String.UnicodeScalarView()
        s.append(contentsOf: new)
        return String(s)
    }
}
