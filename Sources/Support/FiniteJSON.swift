// JSON for results that may hold NaN or ±Inf (a loss of a model whose weights overflow): JSON has no such
// numbers, so they are written as null and counted, for the caller to report and fail on. Nothing traps.
import Foundation

/// Encoding results to JSON with non-finite numbers as null.
public enum FiniteJSON {
    /// What non-finite numbers are encoded as before they become null (no result string holds it).
    static let sentinel = "__prune_non_finite_number__"

    /// `value` as pretty, key-sorted JSON with every NaN and ±Inf written as null, and how many there were.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = true) throws -> (data: Data, nonFinite: Int) {
        let encoder = pretty ? JSONEncoder.sorted : JSONEncoder.sortedLine
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: sentinel, negativeInfinity: sentinel, nan: sentinel)
        let text = String(decoding: try encoder.encode(value), as: UTF8.self)
        let quoted = "\"\(sentinel)\""
        let parts = text.components(separatedBy: quoted)
        return (Data(parts.joined(separator: "null").utf8), parts.count - 1)
    }

    /// A JSONSerialization object (dictionaries, arrays, numbers, strings) as one line of key-sorted JSON,
    /// non-finite numbers as null, and the key paths where they were.
    public static func line(_ object: Any) -> (text: String, nonFinite: [String]) {
        var bad: [String] = []
        func clean(_ value: Any, _ path: String) -> Any {
            switch value {
            case let d as Double where !d.isFinite:
                bad.append(path)
                return NSNull()
            case let f as Float where !f.isFinite:
                bad.append(path)
                return NSNull()
            case let dict as [String: Any]:
                return dict.reduce(into: [String: Any]()) { $0[$1.key] = clean($1.value, path.isEmpty ? $1.key : "\(path).\($1.key)") }
            case let list as [Any]:
                return list.enumerated().map { clean($1, "\(path)[\($0)]") }
            default:
                return value
            }
        }
        let cleaned = clean(object, "")
        guard let data = try? JSONSerialization.data(withJSONObject: cleaned, options: [.sortedKeys]) else {
            return ("null", bad)
        }
        return (String(decoding: data, as: UTF8.self), bad)
    }
}
