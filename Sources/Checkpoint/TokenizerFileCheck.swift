// The tokenizer files of a checkpoint directory, checked as files (the Tokenizers module loads them
// for real where they are used): tokenizer.json is a JSON object whose model vocabulary and added tokens
// have ids inside the model's vocabulary; tokenizer.model is a well-formed protocol buffer with at most
// vocab_size pieces; tokenizer_config.json and special_tokens_map.json are JSON objects. A cut or merge thus never copies a tokenizer no runtime can read, and an id the model has no
// embedding row for is refused before any text is encoded.
import Foundation
import Support

/// Checks the tokenizer files of a checkpoint directory.
public enum TokenizerFileCheck {
    /// Companion files that must be JSON objects when present.
    static let jsonObjectFiles = ["tokenizer_config.json", "special_tokens_map.json"]

    /// Checks every tokenizer file present in `directory` against a model of `vocabularySize` ids.
    public static func check(directory: URL, vocabularySize: Int) throws {
        let fm = FileManager.default
        for name in jsonObjectFiles {
            let url = directory.appendingPathComponent(name)
            if fm.fileExists(atPath: url.path) { _ = try ConfigJSON.read(url) }
        }
        let json = directory.appendingPathComponent("tokenizer.json")
        if fm.fileExists(atPath: json.path) { try checkTokenizerJSON(json, vocabularySize: vocabularySize) }
        let model = directory.appendingPathComponent("tokenizer.model")
        if fm.fileExists(atPath: model.path) {
            guard let data = fm.contents(atPath: model.path) else { throw PruneError(file: model, "cannot read") }
            try checkSentencePieceModel(data, file: model, vocabularySize: vocabularySize)
        }
    }

    /// tokenizer.json: an object with a "model" object; vocabulary and added-token ids in 0..<V.
    public static func checkTokenizerJSON(_ url: URL, vocabularySize V: Int) throws {
        let object = try ConfigJSON.read(url)
        guard let model = object["model"] as? [String: Any] else { throw PruneError(file: url, "no \"model\" object") }
        var ids: [(String, Any)] = []
        switch model["vocab"] {
        case let vocab as [String: Any]:
            ids += vocab.map { ($0.key, $0.value) }
        case let pieces as [Any]:
            // Unigram: [[piece, score], …]; the id is the position.
            guard pieces.count <= V else {
                throw PruneError(file: url, "vocabulary of \(pieces.count) pieces is larger than the model's vocab_size \(V)")
            }
        case nil:
            break
        default:
            throw PruneError(file: url, "\"model.vocab\" is neither an object nor a list")
        }
        guard object["added_tokens"] == nil || object["added_tokens"] is [Any] else {
            throw PruneError(file: url, "\"added_tokens\" is not a list")
        }
        for entry in object["added_tokens"] as? [Any] ?? [] {
            guard let token = entry as? [String: Any], let content = token["content"] as? String, let id = token["id"] else {
                throw PruneError(file: url, "an added_tokens entry has no \"content\" string and \"id\"")
            }
            ids.append((content, id))
        }
        for (token, value) in ids {
            guard let n = value as? NSNumber, type(of: n) == NSNumber.self, let id = Int(exactly: n.doubleValue), id >= 0 else {
                throw PruneError(file: url, "token \(token.debugDescription) has id \(value), not a non-negative integer")
            }
            guard id < V else {
                throw PruneError(file: url, "token \(token.debugDescription) has id \(id), outside the model's vocabulary (vocab_size \(V))")
            }
        }
    }

    /// tokenizer.model (SentencePiece's ModelProto): every field of the top-level message well formed,
    /// at least one and at most V pieces (field 1).
    public static func checkSentencePieceModel(_ data: Data, file url: URL, vocabularySize V: Int) throws {
        var pieces = 0
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var reader = ProtobufReader(bytes: raw)
            while !reader.atEnd {
                guard let (field, wireType) = reader.tag(), field > 0 else {
                    throw PruneError(file: url, "not a SentencePiece model (malformed field at byte \(reader.offset))")
                }
                guard reader.skip(wireType: wireType) else {
                    throw PruneError(file: url, "not a SentencePiece model (field \(field) runs past the end or has wire type \(wireType))")
                }
                if field == 1 {
                    guard wireType == 2 else { throw PruneError(file: url, "not a SentencePiece model (pieces are not messages)") }
                    pieces += 1
                }
            }
        }
        guard pieces > 0 else { throw PruneError(file: url, "not a SentencePiece model (no pieces)") }
        guard pieces <= V else {
            throw PruneError(file: url, "\(pieces) pieces is more than the model's vocab_size \(V)")
        }
    }
}

/// Walks the fields of one protocol-buffer message without interpreting them.
struct ProtobufReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { offset >= bytes.count }

    /// A base-128 varint, or nil when it is cut off or longer than ten bytes.
    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            guard offset < bytes.count else { return nil }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        return nil
    }

    /// The next field number and wire type.
    mutating func tag() -> (field: UInt64, wireType: UInt64)? {
        guard let key = varint() else { return nil }
        return (key >> 3, key & 7)
    }

    /// Steps over a field's value; false when the value is cut off or the wire type is unknown.
    mutating func skip(wireType: UInt64) -> Bool {
        switch wireType {
        case 0: return varint() != nil
        case 1: return advance(8)
        case 5: return advance(4)
        case 2:
            guard let length = varint(), length <= UInt64(bytes.count - offset) else { return false }
            return advance(Int(length))
        default: return false
        }
    }

    private mutating func advance(_ n: Int) -> Bool {
        guard n <= bytes.count - offset else { return false }
        offset += n
        return true
    }
}
