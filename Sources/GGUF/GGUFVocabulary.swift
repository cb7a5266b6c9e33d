// The tokenizer.* keys of a GGUF model: the checkpoint's vocabulary as llama.cpp's loader (src/llama-vocab.cpp) reads
// it and convert_hf_to_gguf.py writes it. SentencePiece (tokenizer.model) becomes model "llama" with every piece, its
// score and its type; byte-level BPE (tokenizer.json) becomes model "gpt2" with its tokens, their types, the merges
// and the pre-tokenizer's llama.cpp name (GGUFPreTokenizer). Ids up to config.json's vocab_size that the tokenizer
// lacks are padded as "[PAD<id>]" (unused), as convert_hf_to_gguf.py pads them. Then the special ids (BOS, EOS, unknown,
// padding), whether BOS/EOS are added as our tokenizer adds them, and the chat template.
import Checkpoint
import Foundation
import Support
import Tokenizers

/// The vocabulary keys of a GGUF model.
public enum GGUFVocabulary {
    /// llama.cpp's token types (gguf-py TokenType).
    enum TokenType: Int32 {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// One vocabulary as the keys hold it.
    struct Tokens {
        var texts: [String]
        var types: [TokenType]
        var scores: [Float]?
    }

    /// The tokenizer.* keys of the tokenizer shipped in `directory`, covering the `config.vocabSize` ids of the model.
    public static func metadata(directory: URL, config: LlamaConfig) throws -> [(key: String, value: GGUFValue)] {
        let settings = TokenizerSettings(directory: directory)
        let spm = directory.appendingPathComponent("tokenizer.model"), json = directory.appendingPathComponent("tokenizer.json")
        let fm = FileManager.default
        var keys: [(key: String, value: GGUFValue)] = []
        if let add = settings.addPrefixSpace { keys.append(("tokenizer.ggml.add_space_prefix", .bool(add))) }
        let tokenizer: Tokenizer
        let tokens: Tokens
        var unknownID: Int32?
        if fm.fileExists(atPath: spm.path) {
            let sp = try SentencePieceTokenizer(model: spm)
            tokens = try sentencePieceTokens(sp, settings: settings, size: config.vocabSize, file: spm)
            keys += [("tokenizer.ggml.model", .string("llama")), ("tokenizer.ggml.pre", .string("default"))]
            tokenizer = sp
            unknownID = sp.unknownTokenID
        } else if fm.fileExists(atPath: json.path) {
            let bpe = try BPETokenizer(directory: directory)
            tokens = try bpeTokens(bpe, size: config.vocabSize, file: json)
            keys += [("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(try GGUFPreTokenizer.name(of: bpe, file: json)))]
            tokenizer = bpe
            unknownID = bpe.unknownTokenID
        } else {
            throw PruneError(file: directory, "no tokenizer.model or tokenizer.json: a GGUF file needs the vocabulary")
        }
        keys.append(("tokenizer.ggml.tokens", .strings(tokens.texts)))
        if let scores = tokens.scores { keys.append(("tokenizer.ggml.scores", .floats(scores))) }
        keys.append(("tokenizer.ggml.token_type", .int32s(tokens.types.map(\.rawValue))))
        if let bpe = tokenizer as? BPETokenizer {
            // As convert_hf_to_gguf.py: a space inside a merge's part is written as U+0120, the space being the separator.
            func part(_ s: String) -> String { s.replacingOccurrences(of: " ", with: "\u{120}") }
            keys.append(("tokenizer.ggml.merges", .strings(bpe.merges.map { part($0.left) + " " + part($0.right) })))
        }

        // Special tokens the config names by text win over the model's own, as transformers resolves them.
        let idOfText = Dictionary(tokens.texts.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { first, _ in first })
        if let unk = settings.unkToken.flatMap({ idOfText[$0] }) { unknownID = unk }
        let padID = settings.padToken.flatMap { idOfText[$0] } ?? config.padTokenID.map(Int32.init)
        let special: [(String, Int32?)] = [("bos", tokenizer.bosTokenID), ("eos", tokenizer.eosTokenID), ("unknown", unknownID),
                                           ("padding", padID)]
        for (role, id) in special {
            guard let id, id >= 0, Int(id) < config.vocabSize else { continue }
            keys.append(("tokenizer.ggml.\(role)_token_id", .uint32(UInt32(id))))
        }
        let addsEOS = (tokenizer as? SentencePieceTokenizer)?.addsEOS ?? (tokenizer as? BPETokenizer)?.addsEOS ?? false
        keys += [("tokenizer.ggml.add_bos_token", .bool(tokenizer.addsBOS)), ("tokenizer.ggml.add_eos_token", .bool(addsEOS))]
        if let template = tokenizer.chatTemplate { keys.append(("tokenizer.chat_template", .string(template))) }
        return keys
    }

    /// Every piece with its score and type; then tokenizer_config.json's added_tokens_decoder entries (control when
    /// special, user-defined otherwise, score −1000), as convert_hf_to_gguf.py's _create_vocab_sentencepiece.
    static func sentencePieceTokens(_ sp: SentencePieceTokenizer, settings: TokenizerSettings, size: Int, file: URL) throws -> Tokens {
        guard sp.vocabularySize <= size else {
            throw PruneError(file: file, "has \(sp.vocabularySize) pieces but config.json's vocab_size is \(size)")
        }
        var tokens = Tokens(texts: (0..<size).map { "[PAD\($0)]" }, types: Array(repeating: .unused, count: size), scores: nil)
        var scores = [Float](repeating: -10000, count: size)
        let ids = (0..<Int32(sp.vocabularySize)).map { $0 }
        for (id, piece) in zip(ids, sp.pieces(ids)) {
            tokens.texts[Int(id)] = piece
            scores[Int(id)] = sp.score(id)
            tokens.types[Int(id)] = TokenType(rawValue: sp.kind(id).rawValue) ?? .normal
        }
        for (id, added) in settings.addedTokensDecoder where id < size {
            let isControl = added.special || looksSpecial(added.content)
            tokens.texts[id] = isControl ? added.content : added.content.replacingOccurrences(of: "\u{2581}", with: " ")
            tokens.types[id] = isControl ? .control : .userDefined
            scores[id] = -1000
        }
        tokens.scores = scores
        return tokens
    }

    /// The vocabulary and added tokens (control when special or special-looking, user-defined otherwise), as
    /// convert_hf_to_gguf.py's get_vocab_base.
    static func bpeTokens(_ bpe: BPETokenizer, size: Int, file: URL) throws -> Tokens {
        guard bpe.vocabularySize <= size else {
            throw PruneError(file: file, "has \(bpe.vocabularySize) tokens but config.json's vocab_size is \(size)")
        }
        let added = Dictionary(bpe.addedTokens.map { (Int($0.id), $0) }, uniquingKeysWith: { _, last in last })
        var tokens = Tokens(texts: [], types: [], scores: nil)
        for id in 0..<size {
            guard id < bpe.tokenOfID.count, let text = bpe.tokenOfID[id] else {
                tokens.texts.append("[PAD\(id)]")
                tokens.types.append(.unused)
                continue
            }
            if let token = added[id] {
                let isControl = token.special || looksSpecial(text)
                tokens.texts.append(isControl ? text : text.replacingOccurrences(of: "\u{2581}", with: " "))
                tokens.types.append(isControl ? .control : .userDefined)
            } else {
                tokens.texts.append(text)
                tokens.types.append(.normal)
            }
        }
        return tokens
    }

    /// convert_hf_to_gguf.py's does_token_look_special: tokens some models add without marking them special.
    static func looksSpecial(_ text: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(text)
            || (text.hasPrefix("<|") && text.hasSuffix("|>")) || (text.hasPrefix("<\u{FF5C}") && text.hasSuffix("\u{FF5C}>"))
            || (text.hasPrefix("<unused") && text.hasSuffix(">"))
    }
}
