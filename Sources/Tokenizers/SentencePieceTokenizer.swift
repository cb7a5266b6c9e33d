// SentencePiece tokenizer.model through libsentencepiece (C++ behind an extern "C" shim). BOS is
// prepended as transformers' LlamaTokenizer does (add_bos_token, default true; add_eos_token, default false).
import CSentencePiece
import Foundation
import Support

/// A Llama-style SentencePiece tokenizer.
public final class SentencePieceTokenizer: Tokenizer {
    private let processor: OpaquePointer
    public let vocabularySize: Int
    public let bosTokenID: Int32?
    public let eosTokenID: Int32?
    /// The unknown piece's id, if the model has one.
    public let unknownTokenID: Int32?
    public let addsBOS: Bool
    /// transformers' add_eos_token (rarely true).
    public let addsEOS: Bool
    public let chatTemplate: String?

    /// Loads `tokenizer.model`; reads add_bos_token / add_eos_token / chat_template from tokenizer_config.json
    /// beside it when present.
    public init(model url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { throw PruneError(file: url, "tokenizer file not found") }
        var err = [CChar](repeating: 0, count: 512)
        guard let p = spm_load(url.path, &err, err.count) else {
            throw PruneError(file: url, "not a SentencePiece model (\(String(cString: err)))")
        }
        processor = p
        vocabularySize = Int(spm_vocab_size(p))
        let bos = spm_bos_id(p), eos = spm_eos_id(p)
        bosTokenID = bos >= 0 ? bos : nil
        eosTokenID = eos >= 0 ? eos : nil
        let unk = spm_unk_id(p)
        unknownTokenID = unk >= 0 ? unk : nil
        let settings = TokenizerSettings(directory: url.deletingLastPathComponent())
        addsBOS = (settings.addBOSToken ?? true) && bos >= 0
        addsEOS = (settings.addEOSToken ?? false) && eos >= 0
        chatTemplate = settings.chatTemplate
    }

    deinit { spm_free(processor) }

    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int32] {
        let utf8 = Array(text.utf8)
        // First try a buffer that fits almost every input; the shim reports the true count when it does not.
        func run(_ capacity: Int) -> (count: Int, ids: [Int32]) {
            var ids = [Int32](repeating: 0, count: capacity)
            let bytes = utf8.map { CChar(bitPattern: $0) } + [0]
            let n = spm_encode(processor, bytes, utf8.count, &ids, ids.count)
            return (Int(n), ids)
        }
        var (n, ids) = run(utf8.count + 16)
        if n > ids.count { (n, ids) = run(n) }
        precondition(n >= 0, "SentencePiece failed to encode")
        var out = Array(ids.prefix(n))
        if addSpecialTokens {
            if addsBOS, let b = bosTokenID { out.insert(b, at: 0) }
            if addsEOS, let e = eosTokenID { out.append(e) }
        }
        return out
    }

    public func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String {
        let valid = ids.filter { $0 >= 0 && Int($0) < vocabularySize }
        guard let s = valid.withUnsafeBufferPointer({ spm_decode(processor, $0.baseAddress, $0.count) }) else { return "" }
        defer { spm_free_string(s) }
        return String(cString: s)
    }

    /// What a piece is, numbered as sentencepiece's model numbers its piece types.
    public enum PieceKind: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, unused = 5, byte = 6
    }

    /// The piece's type (user-defined pieces report normal); an id outside the vocabulary is unused.
    public func kind(_ id: Int32) -> PieceKind {
        guard id >= 0, Int(id) < vocabularySize else { return .unused }
        return PieceKind(rawValue: spm_piece_kind(processor, id)) ?? .normal
    }

    /// The piece's score (log probability of a unigram piece, priority of a BPE merge); 0 outside the vocabulary.
    public func score(_ id: Int32) -> Float {
        guard id >= 0, Int(id) < vocabularySize else { return 0 }
        return spm_score(processor, id)
    }

    public func pieces(_ ids: [Int32]) -> [String] {
        ids.map { id in
            guard id >= 0, Int(id) < vocabularySize, let s = spm_id_to_piece(processor, id) else { return "<invalid:\(id)>" }
            defer { spm_free_string(s) }
            return String(cString: s)
        }
    }
}
