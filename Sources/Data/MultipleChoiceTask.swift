// Zero-shot multiple-choice task files, the records of lm-eval-harness's `multiple_choice` tasks: JSON Lines,
// one question a line,
//   {"context": "The LORD is my", "choices": ["shepherd", "banner", "rock"], "gold": 0}
// `gold` is the 0-based index of the right choice. The context is scored as written and each choice after lm-eval's
// default target delimiter, one space.
import Foundation
import Support

/// One question of a task file.
public struct MultipleChoiceQuestion: Equatable, Sendable {
    /// The text the choices continue (may be empty).
    public var context: String
    /// The candidate continuations, without the delimiter.
    public var choices: [String]
    /// Index of the right choice.
    public var gold: Int
    /// The 1-based line of the file it was read from.
    public var line: Int

    public init(context: String, choices: [String], gold: Int, line: Int) {
        self.context = context
        self.choices = choices
        self.gold = gold
        self.line = line
    }
}

/// A task file read into questions.
public struct MultipleChoiceTask {
    public let url: URL
    /// Questions in file order.
    public let questions: [MultipleChoiceQuestion]

    /// Reads `url`; a missing, empty or non-JSON-Lines file, or a line that is not a question (not a JSON object, a
    /// missing or mistyped field, no choices, gold outside the choices) is an error naming the file and line.
    public init(url: URL) throws {
        self.url = url
        guard DatasetFormat.jsonLinesExtensions.contains(url.pathExtension.lowercased()) else {
            throw PruneError(file: url, "a task file is JSON Lines (.jsonl) of {\"context\", \"choices\", \"gold\"}")
        }
        let content = try JSONLines.text(of: url, what: "task")
        questions = try JSONLines.objects(in: content, of: url).map { try Self.question($0, url: url) }
        guard !questions.isEmpty else { throw PruneError(file: url, "task file has no questions") }
    }

    static func question(_ entry: JSONLine, url: URL) throws -> MultipleChoiceQuestion {
        func fail(_ problem: String) -> PruneError { PruneError(file: url, "line \(entry.line): \(problem)") }
        let o = entry.object
        guard let context = o["context"] as? String else { throw fail("needs a \"context\" string") }
        guard let list = o["choices"] as? [Any], !list.isEmpty else { throw fail("needs \"choices\", a non-empty list of strings") }
        let choices = try list.enumerated().map { i, v in
            guard let s = v as? String else { throw fail("choice \(i) is not a string") }
            return s
        }
        guard let n = o["gold"] as? NSNumber, type(of: n) == NSNumber.self, let gold = Int(exactly: n.doubleValue) else {
            throw fail("needs \"gold\", the 0-based index of the right choice")
        }
        guard choices.indices.contains(gold) else {
            throw fail("gold \(gold) is outside the \(choices.count) choices (0…\(choices.count - 1))")
        }
        return MultipleChoiceQuestion(context: context, choices: choices, gold: gold, line: entry.line)
    }
}
