// A training record as token ids with a label mask: which tokens the loss predicts. Plain text and ids
// count every token; a prompt/completion pair counts the completion (and the EOS after it) only; a chat
// counts the assistant turns only, found as TRL's assistant-only loss finds them: the text up to an
// assistant turn is the template rendered for the earlier messages with the generation prompt, the text
// through it is the template rendered for the messages up to it, and their tokenizations are prefixes of
// the whole conversation's. Documents other than chats end with EOS (appended unless already there); BOS
// is prepended exactly when the tokenizer adds one (chat templates write their own).
// Dimension glossary: n tokens of one record.
import Foundation
import Support
import Tokenizers

/// Token ids and which of them are labels.
public struct TokenizedRecord: Equatable {
    /// The ids, n of them.
    public var ids: [Int32]
    /// n flags: counted[i] says whether token i is a label (predicted at position i − 1).
    public var counted: [Bool]

    public init(ids: [Int32], counted: [Bool]) {
        precondition(ids.count == counted.count, "\(ids.count) ids, \(counted.count) mask entries")
        self.ids = ids
        self.counted = counted
    }

    /// Tokens that are labels.
    public var countedCount: Int { counted.lazy.filter { $0 }.count }
}

/// Turns training records into token ids with label masks.
public struct RecordTokenizer {
    /// nil for files of input_ids only.
    public let tokenizer: Tokenizer?
    /// Appended after every non-chat document; nil appends nothing.
    public let eosTokenID: Int32?
    /// The dataset file, named in errors.
    public let file: URL

    /// `eosTokenID` defaults to the tokenizer's.
    public init(tokenizer: Tokenizer?, eosTokenID: Int32? = nil, file: URL) {
        self.tokenizer = tokenizer
        self.eosTokenID = eosTokenID ?? tokenizer?.eosTokenID
        self.file = file
    }

    /// `record`, from `line` of the file (named in errors), tokenized.
    public func tokenize(_ record: TrainingRecord, line: Int) throws -> TokenizedRecord {
        func fail(_ problem: String) -> PruneError { PruneError(file: file, "line \(line): \(problem)") }
        switch record {
        case .ids(let ids):
            return withEOS(TokenizedRecord(ids: ids, counted: Array(repeating: true, count: ids.count)))
        case .text(let text):
            let ids = try need(fail).encode(text)
            return withEOS(TokenizedRecord(ids: ids, counted: Array(repeating: true, count: ids.count)))
        case .promptCompletion(let prompt, let completion):
            let t = try need(fail)
            let promptIDs = t.encode(prompt), ids = t.encode(prompt + completion)
            // Where the completion starts: after the prompt's tokens, or where the two first differ when a
            // token spans the boundary (that token then counts as the completion's).
            var start = 0
            while start < min(promptIDs.count, ids.count) && promptIDs[start] == ids[start] { start += 1 }
            return withEOS(TokenizedRecord(ids: ids, counted: ids.indices.map { $0 >= start }))
        case .messages(let messages):
            return try chat(messages, try need(fail), fail)
        }
    }

    func need(_ fail: (String) -> PruneError) throws -> Tokenizer {
        guard let tokenizer else { throw fail("the record holds text but the model has no tokenizer; give pre-tokenized \"input_ids\"") }
        return tokenizer
    }

    /// The record with EOS appended (a label when the record's last token is) unless it already ends with it.
    func withEOS(_ r: TokenizedRecord) -> TokenizedRecord {
        guard let eos = eosTokenID, r.ids.last != eos else { return r }
        return TokenizedRecord(ids: r.ids + [eos], counted: r.counted + [r.counted.last ?? true])
    }

    /// A conversation rendered with the chat template, assistant turns counted.
    func chat(_ messages: [ChatMessage], _ t: Tokenizer, _ fail: (String) -> PruneError) throws -> TokenizedRecord {
        guard let template = t.chatTemplate else { throw fail("a messages record needs the tokenizer's chat_template, and it has none") }
        let special = { (id: Int32?) in id.map { t.pieces([$0])[0] } }
        func render(_ m: ArraySlice<ChatMessage>, prompt: Bool) throws -> String {
            try ChatTemplate.render(template, messages: Array(m), addGenerationPrompt: prompt,
                                    bosToken: special(t.bosTokenID), eosToken: special(t.eosTokenID))
        }
        let full = try render(messages[...], prompt: false)
        let ids = t.encode(full, addSpecialTokens: false)
        var counted = Array(repeating: false, count: ids.count)
        /// The number of tokens of `text`, which must be a prefix of the conversation in text and tokens.
        func prefixTokens(_ text: String, _ what: String) throws -> Int {
            let p = t.encode(text, addSpecialTokens: false)
            guard full.hasPrefix(text), p.count <= ids.count, Array(ids[..<p.count]) == p else {
                throw fail("cannot locate \(what) in the rendered conversation (the chat template does not render prefixes of it as prefixes)")
            }
            return p.count
        }
        for (i, m) in messages.enumerated() where m.role == "assistant" {
            let start = try prefixTokens(try render(messages[..<i], prompt: true), "the start of assistant message \(i + 1)")
            // Through the turn's end-of-turn marker; the whitespace the template puts after it is not a label.
            var through = try render(messages[...i], prompt: false)
            while let last = through.unicodeScalars.last, CharacterSet.whitespacesAndNewlines.contains(last) { through.unicodeScalars.removeLast() }
            let end = try prefixTokens(through, "the end of assistant message \(i + 1)")
            for k in start..<max(start, end) { counted[k] = true }
        }
        return TokenizedRecord(ids: ids, counted: counted)
    }
}
