// The JSON files of a checkpoint (config.json, the shard index), read as dictionaries and written back
// as transformers lays them out (json.dumps(indent=2, sort_keys=True) plus a newline). Unlike
// JSONSerialization the writer keeps a whole float a float: "rope_theta": 10000.0 stays 10000.0.
import Foundation
import Support

/// Reads and writes JSONSerialization-style values (dictionaries, arrays, strings, NSNumbers, NSNull).
public enum ConfigJSON {
    /// Reads `url` as a JSON object.
    public static func read(_ url: URL) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw PruneError(file: url, FileManager.default.fileExists(atPath: url.path) ? "cannot read" : "file not found")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PruneError(file: url, "not a JSON object")
        }
        return object
    }

    /// The text of `value` with a trailing newline.
    public static func data(_ value: Any) throws -> Data {
        var out = ""
        try write(value, indent: 0, into: &out)
        return Data((out + "\n").utf8)
    }

    static func write(_ value: Any, indent: Int, into out: inout String) throws {
        let pad = String(repeating: " ", count: indent + 2), close = String(repeating: " ", count: indent)
        switch value {
        case is NSNull:
            out += "null"
        case let s as String:
            out += JSONText.quoted(s)
        case let n as NSNumber:
            out += try number(n)
        case let dict as [String: Any]:
            guard !dict.isEmpty else { out += "{}"; return }
            out += "{\n"
            for (i, (key, item)) in dict.sorted(by: { $0.key < $1.key }).enumerated() {
                out += pad + JSONText.quoted(key) + ": "
                try write(item, indent: indent + 2, into: &out)
                out += i + 1 < dict.count ? ",\n" : "\n"
            }
            out += close + "}"
        case let list as [Any]:
            guard !list.isEmpty else { out += "[]"; return }
            out += "[\n"
            for (i, item) in list.enumerated() {
                out += pad
                try write(item, indent: indent + 2, into: &out)
                out += i + 1 < list.count ? ",\n" : "\n"
            }
            out += close + "]"
        default:
            throw PruneError("config.json", "cannot write a value of type \(type(of: value)) as JSON")
        }
    }

    /// JSON booleans are a subclass of NSNumber; floats keep a decimal point (as Python's repr).
    static func number(_ n: NSNumber) throws -> String {
        if type(of: n) != NSNumber.self { return n.boolValue ? "true" : "false" }
        let kind = String(cString: n.objCType)
        guard kind == "d" || kind == "f" else { return n.stringValue }
        let x = n.doubleValue
        guard x.isFinite else { throw PruneError("config.json", "\(x) cannot be written as JSON") }
        return "\(x)"   // shortest round-trip form: 1e-05, 0.02, 10000.0
    }

}
