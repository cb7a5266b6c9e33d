// Decoding the JSON files the tools read back (a run's config.json and state.json, analysis.json, a checkpoint's
// config.json): a DecodingError prints as several lines of Swift internals, so every failure becomes one
// PruneError naming the file, what it should have been and the key at fault.
import Foundation

/// JSON files decoded into Decodable types, with one-line errors.
public enum JSONFile {
    /// Decodes `data`, the contents of `file`, as `T`; `kind` says what the file should be ("a finetune run's
    /// config.json"), for "FILE: not KIND: missing key "model"".
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, file: URL, kind: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch {
            throw PruneError(file: file, "not \(kind): \(problem(error))")
        }
    }

    /// Reads `file` and decodes it as `T` (see `decode`).
    public static func read<T: Decodable>(_ type: T.Type, from file: URL, kind: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw PruneError(file: file, FileManager.default.fileExists(atPath: file.path) ? "cannot read" : "file not found")
        }
        return try decode(type, from: data, file: file, kind: kind)
    }

    /// What is wrong, in a few words: `missing key "model"`, `wrong type for "rope_scaling.factor"`.
    public static func problem(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.reduce("") { path, key in key.intValue.map { path + "[\($0)]" } ?? (path.isEmpty ? key.stringValue : path + "." + key.stringValue) }
        }
        switch error {
        case let DecodingError.keyNotFound(key, context):
            return "missing key \"\(path(context.codingPath + [key]))\""
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            return context.codingPath.isEmpty ? "not a JSON object" : "wrong type for \"\(path(context.codingPath))\""
        case let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty:
            // A type's own refusal says what is wrong; a number too large for its type does not.
            return context.debugDescription.hasPrefix("Parsed JSON number") || context.debugDescription.isEmpty
                ? "\"\(path(context.codingPath))\" is out of range" : context.debugDescription
        case DecodingError.dataCorrupted:
            return "not valid JSON"
        default:
            return String(describing: error).split(separator: "\n").first.map(String.init) ?? "unreadable"
        }
    }
}

extension JSONEncoder {
    /// Pretty, key-sorted JSON: every file we write (stable diffs of configs, summaries, records).
    public static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }

    /// Key-sorted JSON on one line: stage keys, metadata strings, JSON lines.
    public static var sortedLine: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
