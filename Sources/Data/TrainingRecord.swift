// Training data files, one record per document: a .txt file is one document; a .jsonl file (or .json
// holding JSON Lines) has one object per line, all of one kind:
//   {"text": "…"}                                    plain text, every token a label
//   {"input_ids": [1, 2, …]}                         ids already tokenized, every token a label
//   {"prompt": "…", "completion": "…"}               loss on the completion only
//   {"messages": [{"role": "…", "content": "…"}, …]} rendered with the chat template, loss on assistant turns
// Other formats (.parquet, .csv, .arrow, …) are refused with one line naming the file.
import Foundation
import Support
import Tokenizers

/// One training document.
public enum TrainingRecord: Equatable {
    case text(String)
    case ids([Int32])
    case promptCompletion(prompt: String, completion: String)
    case messages([ChatMessage])

    /// The record kind as the JSON keys name it ("text", "input_ids", "prompt/completion", "messages").
    public var kind: String {
        switch self {
        case .text: "text"
        case .ids: "input_ids"
        case .promptCompletion: "prompt/completion"
        case .messages: "messages"
        }
    }
}

/// A training data file read into records.
public struct TrainingDataFile {
    /// Extensions read as JSON Lines.
    public static let jsonLinesExtensions = DatasetFormat.jsonLinesExtensions
    /// Extensions read as one plain-text document.
    public static let textExtensions = DatasetFormat.textExtensions

    public let url: URL
    /// Records in file order.
    public let records: [TrainingRecord]
    /// The 1-based line of each record (1 for a text file).
    public let lines: [Int]

    /// Reads `url`; a missing or empty file, an unknown extension, a line that is not a JSON object of one
    /// of the four kinds, or kinds mixed in one file is an error naming the file (and line).
    public init(url: URL) throws {
        self.url = url
        let ext = url.pathExtension.lowercased()
        _ = try DatasetFormat(of: url)
        let content = try JSONLines.text(of: url, what: "dataset")
        guard Self.jsonLinesExtensions.contains(ext) else {
            guard !content.isEmpty else { throw PruneError(file: url, "dataset is empty") }
            records = [.text(content)]
            lines = [1]
            return
        }
        var records: [TrainingRecord] = [], lines: [Int] = []
        for entry in try JSONLines.objects(in: content, of: url) {
            let record = try Self.record(entry.object, url: url, line: entry.line)
            if let first = records.first, first.kind != record.kind {
                throw PruneError(file: url, "line \(entry.line) is a \(record.kind) record but line \(lines[0]) is \(first.kind); use one kind per file")
            }
            records.append(record)
            lines.append(entry.line)
        }
        guard !records.isEmpty else { throw PruneError(file: url, "dataset is empty") }
        self.records = records
        self.lines = lines
    }

    static func record(_ o: [String: Any], url: URL, line: Int) throws -> TrainingRecord {
        func fail(_ problem: String) -> PruneError { PruneError(file: url, "line \(line): \(problem)") }
        if let messages = o["messages"] {
            guard let list = messages as? [[String: Any]], !list.isEmpty else { throw fail("\"messages\" must be a non-empty list of {\"role\", \"content\"} objects") }
            return .messages(try list.enumerated().map { j, m in
                guard let role = m["role"] as? String, let content = m["content"] as? String else {
                    throw fail("message \(j + 1) needs string \"role\" and \"content\"")
                }
                return ChatMessage(role: role, content: content)
            })
        }
        if o["prompt"] != nil || o["completion"] != nil {
            guard let prompt = o["prompt"] as? String, let completion = o["completion"] as? String else {
                throw fail("\"prompt\" and \"completion\" must both be strings")
            }
            return .promptCompletion(prompt: prompt, completion: completion)
        }
        if let ids = o["input_ids"] {
            guard let list = ids as? [Any] else { throw fail("\"input_ids\" must be a list of integers") }
            return .ids(try list.map { v in
                guard let n = v as? NSNumber, type(of: n) == NSNumber.self, let x = Int32(exactly: n.doubleValue) else {
                    throw fail("input_ids must be integers")
                }
                return x
            })
        }
        if let text = o["text"] as? String { return .text(text) }
        throw fail("has none of \"text\", \"input_ids\", \"prompt\"/\"completion\", \"messages\"")
    }
}
