// A Hugging Face tokenizer.json byte-level BPE tokenizer (GPT-2, Llama-3, SmolLM2, Qwen2 families),
// giving the ids the tokenizers library gives. Encoding runs the library's pipeline:
//   added tokens (raw) → normalizer → added tokens (normalized) → pre_tokenizer → bytes → BPE → ids,
// with the post_processor's special tokens around the result when asked. Decoding maps each token's
// byte-level characters back to bytes and reads them as UTF-8.
//
// Not handled (each refused with a PruneError where a file asks for it): model types other than BPE,
// tokenizers without a ByteLevel pre-tokenizer, normalizers other than NFC,
// decoders other than ByteLevel, BPE dropout and subword prefixes/suffixes, pre-tokenizers other than
// Sequence/Split/Digits/ByteLevel, post-processors other than TemplateProcessing/ByteLevel/Roberta/Bert.
// Pair templates (two sequences) and truncation/padding are not used. Added-token ids in the file are
// trusted except where the content is already in the vocabulary (the library then uses that id).
// NFC uses the Swift standard library's Unicode tables; the library's older tables can order a few
// recent combining marks (e.g. Sogdian U+10F49) differently.
import Foundation
import Support

/// Byte-level BPE tokenizer read from a Hugging Face `tokenizer.json`.
public final class BPETokenizer: Tokenizer {
    /// One past the largest id of the vocabulary and the added tokens (49152 for SmolLM2).
    public let vocabularySize: Int
    /// Id of the config's `bos_token` (else the post-processor's leading special token), if any.
    public let bosTokenID: Int32?
    /// Id of the config's `eos_token` (else the post-processor's trailing special token), if any.
    public let eosTokenID: Int32?
    /// Whether `encode(_:addSpecialTokens: true)` starts with BOS: tokenizer_config.json's
    /// `add_bos_token` when present, else the post-processor template (Llama-3 yes, SmolLM2 no).
    public let addsBOS: Bool
    /// `chat_template` of tokenizer_config.json (or chat_template.jinja beside it), if any.
    public let chatTemplate: String?
    /// The BOS token's text (e.g. "<|begin_of_text|>"), as chat templates receive it.
    public let bosToken: String?
    /// The EOS token's text (e.g. "<|im_end|>"), as chat templates receive it.
    public let eosToken: String?
    /// Whether `encode(_:addSpecialTokens: true)` ends with EOS.
    public let addsEOS: Bool
    /// transformers' `clean_up_tokenization_spaces` (" ." → "." and the like after decoding).
    public let cleansUpSpaces: Bool
    /// Vocabulary spelling of each id, byte-level characters for model tokens, the content for added tokens
    /// (nil for ids neither uses).
    public let tokenOfID: [String?]
    /// `added_tokens`, in file order (ids as the library assigns them).
    public let addedTokens: [AddedToken]

    private let model: Model
    private let normalizer: Normalizer
    private let preTokenizer: PreTokenizer
    /// Added tokens matched in the raw text, then those matched after normalization.
    private let rawAddedTokens: AddedTokenMatcher
    private let normalizedAddedTokens: AddedTokenMatcher
    /// Ids put before / after the text by `encode(_:addSpecialTokens: true)`.
    private let prefixIDs: [Int32]
    private let suffixIDs: [Int32]
    /// The bytes each id decodes to.
    private let bytesOfID: [[UInt8]]
    private let specialIDs: Set<Int32>

    /// Loads `tokenizer.json` from a checkpoint directory, with `tokenizer_config.json`,
    /// `special_tokens_map.json` and `chat_template.jinja` when present.
    public convenience init(directory: URL) throws {
        let tokenizerJSON = directory.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizerJSON.path) else {
            throw PruneError(file: tokenizerJSON, "not found")
        }
        func optional(_ name: String) -> URL? {
            let url = directory.appendingPathComponent(name)
            return FileManager.default.fileExists(atPath: url.path) ? url : nil
        }
        try self.init(tokenizerJSON: tokenizerJSON, config: optional("tokenizer_config.json"),
                      specialTokensMap: optional("special_tokens_map.json"),
                      chatTemplateFile: optional("chat_template.jinja"))
    }

    /// Loads a tokenizer.json, taking BOS/EOS, `add_bos_token`, `add_eos_token`,
    /// `clean_up_tokenization_spaces` and `chat_template` from a tokenizer_config.json when given,
    /// and BOS/EOS from a special_tokens_map.json where the config lacks them.
    public convenience init(tokenizerJSON: URL, config: URL?, specialTokensMap: URL? = nil) throws {
        try self.init(tokenizerJSON: tokenizerJSON, config: config, specialTokensMap: specialTokensMap,
                      chatTemplateFile: nil)
    }

    private init(tokenizerJSON file: URL, config configURL: URL?, specialTokensMap mapURL: URL?,
                 chatTemplateFile: URL?) throws {
        let json = try Self.readObject(file)
        let config = try configURL.map(Self.readObject) ?? [:]
        let specialTokensMap = try mapURL.map(Self.readObject) ?? [:]

        // What kind of tokenizer this is comes first, so a wrong kind is reported as such.
        guard let modelJSON = json["model"] as? [String: Any] else {
            throw PruneError(file: file, "no \"model\" object")
        }
        // Old files omit the type of a BPE model; vocab + merges identify it.
        let modelType = (modelJSON["type"] as? String) ?? (modelJSON["merges"] != nil ? "BPE" : "unknown")
        guard modelType == "BPE" else {
            throw PruneError(file: file, "tokenizer model type \"\(modelType)\" is not supported (only byte-level BPE)")
        }
        let preTokenizer = try PreTokenizer(json: json["pre_tokenizer"], file: file)
        guard preTokenizer.isByteLevel else {
            let kind = (json["pre_tokenizer"] as? [String: Any])?["type"] as? String ?? "null"
            throw PruneError(file: file, "BPE tokenizer is not byte-level (pre_tokenizer \(kind) has no ByteLevel step)")
        }
        try Self.checkDecoder(json["decoder"], file: file)
        let normalizer = try Normalizer(json: json["normalizer"], file: file)
        let model = try Model(json: modelJSON, file: file)
        self.preTokenizer = preTokenizer
        self.normalizer = normalizer
        self.model = model

        let addedTokens = try ((json["added_tokens"] as? [Any]) ?? []).map { entry -> AddedToken in
            guard let object = entry as? [String: Any] else {
                throw PruneError(file: file, "added_tokens entry is not an object")
            }
            var token = try AddedToken(json: object, file: file)
            // The tokenizers library gives a token already in the vocabulary its vocabulary id.
            if let id = model.idOfToken[token.content] { token.id = id }
            return token
        }
        rawAddedTokens = AddedTokenMatcher(addedTokens.filter { !$0.normalized })
        normalizedAddedTokens = AddedTokenMatcher(addedTokens.filter(\.normalized)) { normalizer.normalize($0) }
        specialIDs = Set(addedTokens.filter(\.special).map(\.id))
        self.addedTokens = addedTokens

        // Id ↔ spelling over the model vocabulary and the added tokens (which may extend it).
        var idOfToken = model.idOfToken
        for token in addedTokens { idOfToken[token.content] = token.id }
        let maxID = max(model.idOfToken.values.max() ?? -1, addedTokens.map(\.id).max() ?? -1)
        var tokenOfID = [String?](repeating: nil, count: Int(maxID) + 1)
        for (token, id) in model.idOfToken where id >= 0 { tokenOfID[Int(id)] = token }
        for token in addedTokens where token.id >= 0 { tokenOfID[Int(token.id)] = token.content }
        self.tokenOfID = tokenOfID
        vocabularySize = tokenOfID.count
        // The tokenizers library's ByteLevel decoder: a token outside the byte mapping is its UTF-8.
        bytesOfID = tokenOfID.map { token in token.map { ByteLevel.decode($0) ?? Array($0.utf8) } ?? [] }

        let template = try Self.postProcessorIDs(json["post_processor"], idOfToken: idOfToken, file: file)
        func spelling(_ id: Int32?) -> String? {
            guard let id, id >= 0, Int(id) < tokenOfID.count else { return nil }
            return tokenOfID[Int(id)]
        }
        bosToken = Self.tokenText(config["bos_token"]) ?? Self.tokenText(specialTokensMap["bos_token"])
            ?? spelling(template.prefix.first)
        eosToken = Self.tokenText(config["eos_token"]) ?? Self.tokenText(specialTokensMap["eos_token"])
            ?? spelling(template.suffix.last)
        bosTokenID = bosToken.flatMap { idOfToken[$0] }
        eosTokenID = eosToken.flatMap { idOfToken[$0] }

        // tokenizer_config.json's add_bos_token / add_eos_token override the post-processor template.
        var prefix = template.prefix, suffix = template.suffix
        if let addBOS = config["add_bos_token"] as? Bool, let bos = bosTokenID {
            if addBOS, !prefix.contains(bos) { prefix.insert(bos, at: 0) }
            if !addBOS { prefix.removeAll { $0 == bos } }
        }
        if let addEOS = config["add_eos_token"] as? Bool, let eos = eosTokenID {
            if addEOS, !suffix.contains(eos) { suffix.append(eos) }
            if !addEOS { suffix.removeAll { $0 == eos } }
        }
        prefixIDs = prefix
        suffixIDs = suffix
        addsBOS = bosTokenID != nil && prefix.first == bosTokenID
        addsEOS = eosTokenID != nil && suffix.last == eosTokenID
        cleansUpSpaces = (config["clean_up_tokenization_spaces"] as? Bool) ?? false

        if let configTemplate = try Self.chatTemplate(config["chat_template"], file: configURL ?? file) {
            chatTemplate = configTemplate
        } else if let chatTemplateFile {
            guard let text = try? String(contentsOf: chatTemplateFile, encoding: .utf8) else {
                throw PruneError(file: chatTemplateFile, "cannot be read as UTF-8 text")
            }
            chatTemplate = text
        } else {
            chatTemplate = nil
        }
    }

    // MARK: Tokenizer

    /// The ids the tokenizers library gives for `text`; with `addSpecialTokens`, the post-processor's
    /// special tokens (BOS for Llama-3) around them, adjusted by `add_bos_token` / `add_eos_token`.
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int32] {
        var ids: [Int32] = addSpecialTokens ? prefixIDs : []
        ids.reserveCapacity(text.utf8.count / 3 + prefixIDs.count + suffixIDs.count)
        let scalars = Array(text.unicodeScalars)
        for segment in rawAddedTokens.segments(scalars, in: 0..<scalars.count) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let range):
                if normalizer.isIdentity {
                    encodeNormalized(scalars, range, into: &ids)
                } else {
                    let normalized = Array(normalizer.normalize(String(String.UnicodeScalarView(scalars[range]))).unicodeScalars)
                    encodeNormalized(normalized, 0..<normalized.count, into: &ids)
                }
            }
        }
        if addSpecialTokens { ids.append(contentsOf: suffixIDs) }
        return ids
    }

    /// The text of `ids` as transformers decodes it: bytes of each token read as UTF-8 (a character cut
    /// off at either end becomes U+FFFD), special tokens dropped when asked, and spaces before
    /// punctuation removed where the config sets `clean_up_tokenization_spaces` (Llama-3 does).
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < bytesOfID.count {
            if skipSpecialTokens, specialIDs.contains(id) { continue }
            bytes.append(contentsOf: bytesOfID[Int(id)])
        }
        // Invalid UTF-8 (a sequence cut inside a character) becomes U+FFFD, like from_utf8_lossy.
        let text = String(decoding: bytes, as: UTF8.self)
        return cleansUpSpaces ? Self.cleanUpTokenizationSpaces(text) : text
    }

    /// The vocabulary spelling of each id ("Ġupon"); an id outside the vocabulary gives "".
    public func pieces(_ ids: [Int32]) -> [String] {
        ids.map { id in id >= 0 && Int(id) < tokenOfID.count ? tokenOfID[Int(id)] ?? "" : "" }
    }

    // MARK: what other tools need to rebuild it

    /// The merges, highest priority first, as pairs of vocabulary spellings (a pair listed twice appears once, at the
    /// priority the tokenizers library gives it).
    public var merges: [(left: String, right: String)] {
        model.merges.sorted { $0.value.rank < $1.value.rank }.compactMap { key, _ in
            let left = Int(key >> 32), right = Int(key & 0xFFFF_FFFF)
            guard left < tokenOfID.count, right < tokenOfID.count, let l = tokenOfID[left], let r = tokenOfID[right] else { return nil }
            return (l, r)
        }
    }

    /// The BPE model's `unk_token` id, if any.
    public var unknownTokenID: Int32? { model.unknownID }
    /// The BPE model's `ignore_merges` (Llama-3: a word that is itself a token is not split).
    public var ignoresMerges: Bool { model.ignoreMerges }
    /// Whether the normalizer applies NFC (the only normalization supported).
    public var appliesNFC: Bool { normalizer.appliesNFC }
    /// The pre-tokenizer's steps as the file declares them, in one canonical spelling, e.g.
    /// ["Digits(individual_digits: true)", "ByteLevel(add_prefix_space: false, use_regex: true)"].
    public var preTokenizerDeclaration: [String] { preTokenizer.declaration }

    // MARK: encoding steps

    /// Encodes text already normalized: split off normalized added tokens, then pre-tokenize and BPE.
    private func encodeNormalized(_ scalars: [Unicode.Scalar], _ range: Range<Int>, into ids: inout [Int32]) {
        var bytes: [UInt8] = []
        for segment in normalizedAddedTokens.segments(scalars, in: range) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let textRange):
                for word in preTokenizer.words(scalars[textRange]) {
                    bytes.removeAll(keepingCapacity: true)
                    for scalar in word { Self.appendUTF8(scalar, to: &bytes) }
                    model.tokenize(bytes[...], into: &ids)
                }
            }
        }
    }

    @inline(__always) private static func appendUTF8(_ scalar: Unicode.Scalar, to bytes: inout [UInt8]) {
        let value = scalar.value
        if value < 0x80 {
            bytes.append(UInt8(value))
        } else if value < 0x800 {
            bytes.append(UInt8(0xC0 | value >> 6))
            bytes.append(UInt8(0x80 | value & 0x3F))
        } else if value < 0x10000 {
            bytes.append(UInt8(0xE0 | value >> 12))
            bytes.append(UInt8(0x80 | value >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | value & 0x3F))
        } else {
            bytes.append(UInt8(0xF0 | value >> 18))
            bytes.append(UInt8(0x80 | value >> 12 & 0x3F))
            bytes.append(UInt8(0x80 | value >> 6 & 0x3F))
            bytes.append(UInt8(0x80 | value & 0x3F))
        }
    }

    /// transformers' `clean_up_tokenization`: drops the space the old word-level tokenizers put
    /// before punctuation and English contractions.
    private static func cleanUpTokenizationSpaces(_ text: String) -> String {
        [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
         (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
            .reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
    }

    // MARK: reading the files

    private static func readObject(_ url: URL) throws -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw PruneError(file: url, "cannot be read") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw PruneError(file: url, "is not a JSON object")
        }
        return object
    }

    /// The decoder must undo the byte-level mapping; other decoders would change the text.
    private static func checkDecoder(_ json: Any?, file: URL) throws {
        guard let json = json, !(json is NSNull) else { return }  // no decoder: tokens are still byte-level
        guard let type = (json as? [String: Any])?["type"] as? String else {
            throw PruneError(file: file, "decoder has no \"type\"")
        }
        guard type == "ByteLevel" else {
            throw PruneError(file: file, "decoder type \"\(type)\" is not supported (only ByteLevel)")
        }
    }

    /// The special-token ids the post-processor puts before and after a single sequence.
    private static func postProcessorIDs(_ json: Any?, idOfToken: [String: Int32],
                                         file: URL) throws -> (prefix: [Int32], suffix: [Int32]) {
        guard let json = json, !(json is NSNull) else { return ([], []) }
        guard let object = json as? [String: Any], let type = object["type"] as? String else {
            throw PruneError(file: file, "post_processor has no \"type\"")
        }
        switch type {
        case "ByteLevel":
            return ([], [])  // only adjusts offsets
        case "Sequence":
            var prefix: [Int32] = [], suffix: [Int32] = []
            for child in (object["processors"] as? [Any]) ?? [] {
                let (childPrefix, childSuffix) = try postProcessorIDs(child, idOfToken: idOfToken, file: file)
                prefix = childPrefix + prefix
                suffix += childSuffix
            }
            return (prefix, suffix)
        case "TemplateProcessing":
            guard let single = object["single"] as? [Any] else {
                throw PruneError(file: file, "post_processor TemplateProcessing has no \"single\" template")
            }
            let specialTokens = (object["special_tokens"] as? [String: Any]) ?? [:]
            var prefix: [Int32] = [], suffix: [Int32] = []
            var seenSequence = false
            for piece in single {
                let piece = piece as? [String: Any] ?? [:]
                if piece["Sequence"] != nil { seenSequence = true; continue }
                guard let name = (piece["SpecialToken"] as? [String: Any])?["id"] as? String else {
                    throw PruneError(file: file, "post_processor template piece is neither Sequence nor SpecialToken")
                }
                let listed = ((specialTokens[name] as? [String: Any])?["ids"] as? [Any])?
                    .compactMap { ($0 as? NSNumber)?.int32Value }
                guard let ids = listed ?? idOfToken[name].map({ [$0] }) else {
                    throw PruneError(file: file, "post_processor special token \"\(name)\" has no id")
                }
                if seenSequence { suffix += ids } else { prefix += ids }
            }
            return (prefix, suffix)
        case "RobertaProcessing", "BertProcessing":
            // {"cls": ["<s>", 0], "sep": ["</s>", 2]}: cls text sep.
            guard let cls = ((object["cls"] as? [Any])?.last as? NSNumber)?.int32Value,
                  let sep = ((object["sep"] as? [Any])?.last as? NSNumber)?.int32Value else {
                throw PruneError(file: file, "post_processor \(type) lacks cls/sep ids")
            }
            return ([cls], [sep])
        default:
            throw PruneError(file: file, "post_processor type \"\(type)\" is not supported")
        }
    }

    /// A special token as tokenizer_config.json writes it: a string or {"content": ...}.
    private static func tokenText(_ json: Any?) -> String? {
        if let text = json as? String { return text }
        return (json as? [String: Any])?["content"] as? String
    }

    /// `chat_template`: a string, or a list of {name, template} of which "default" (else the first) is taken.
    private static func chatTemplate(_ json: Any?, file: URL) throws -> String? {
        guard let json = json, !(json is NSNull) else { return nil }
        if let text = json as? String { return text }
        if let list = json as? [[String: Any]] {
            return (list.first { ($0["name"] as? String) == "default" } ?? list.first)?["template"] as? String
        }
        throw PruneError(file: file, "chat_template is neither a string nor a list of {name, template}")
    }
}
