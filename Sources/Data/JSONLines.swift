// JSON Lines text: one JSON object a line, blank lines skipped. Every reader of a .jsonl file (datasets,
// training data, task files) takes its objects from here, so a bad line is reported one way.
import Foundation
import Support

/// One object of a JSON Lines file and the 1-based line it stands on.
public struct JSONLine {
    public var line: Int
    public var object: [String: Any]
}

/// Reading JSON Lines.
public enum JSONLines {
    /// The objects of `content` (the text of `url`, named in errors); a non-blank line that is not a JSON object
    /// is an error naming its line.
    public static func objects(in content: String, of url: URL) throws -> [JSONLine] {
        var out: [JSONLine] = []
        for (i, line) in content.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
                throw PruneError(file: url, "line \(i + 1) is not a JSON object")
            }
            out.append(JSONLine(line: i + 1, object: object))
        }
        return out
    }

    /// The text of `url`: an error naming it (and `what` it was read as) when it is missing, unreadable or not UTF-8.
    public static func text(of url: URL, what: String) throws -> String {
        guard FileManager.default.fileExists(atPath: url.path) else { throw PruneError(file: url, "\(what) file not found") }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw PruneError(file: url, "cannot read \(what)") }
        guard let content = String(data: data, encoding: .utf8) else { throw PruneError(file: url, "\(what) is not UTF-8 text") }
        return content
    }
}
