// `--help` as a user reads it: ArgumentParser wraps every paragraph to the terminal itself, so a newline typed
// into a discussion or help string shows as a line broken mid-sentence. With a terminal wide enough that nothing
// wraps, every line of the help is a whole paragraph, a list item or an example.
import Foundation
import Support
import TestSupport
import XCTest

final class HelpTextTests: XCTestCase {
    /// `prune --help`, `prune CMD --help` for every subcommand it lists, and `finetune --help`.
    func helpTexts() throws -> [(command: String, text: String)] {
        try PruneExecutable.requireBuilt()
        let wide = ["COLUMNS": "1000"]
        func help(_ executable: URL, _ args: [String]) throws -> String {
            let r = try ChildProcess.run(executable.path, args + ["--help"], environment: wide)
            XCTAssertEqual(r.status, 0, "\(args) --help: \(r.stderr)")
            return r.stdout
        }
        let root = try help(PruneExecutable.url, [])
        let subcommands = root.components(separatedBy: "SUBCOMMANDS:").last!.split(separator: "\n")
            .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
            .compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0 != "See" }
        XCTAssertTrue(subcommands.contains("cut") && subcommands.contains("run"), root)
        return [("prune", root)] + (try subcommands.map { ("prune \($0)", try help(PruneExecutable.url, [$0])) })
            + [("finetune", try help(PruneExecutable.finetune, []))]
    }

    /// Where `text` has a line broken inside a sentence: a line ending in a lowercase word followed by one starting
    /// with a lowercase word, or two prose lines (flush left) in a row without a list introduced by ":".
    static func hardWraps(_ text: String) -> [String] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var found: [String] = []
        for (a, b) in zip(lines, lines.dropFirst()) where !a.isEmpty && !b.isEmpty {
            let lastWord = a.split(separator: " ").last.map(String.init) ?? ""
            let word = lastWord.trimmingCharacters(in: CharacterSet(charactersIn: ",;"))
            let endsInWord = !word.isEmpty && word.allSatisfy { $0.isLowercase }
            let next = b.trimmingCharacters(in: .whitespaces)
            let startsWithWord = next.first?.isLowercase == true && next.prefix { $0.isLetter }.count > 1
            let bothProse = !a.hasPrefix(" ") && !b.hasPrefix(" ") && !a.hasSuffix(":")
            if (endsInWord && startsWithWord) || bothProse { found.append("\(a)⏎\(b)") }
        }
        return found
    }

    func testTheCheckFindsALineBrokenMidSentence() {
        XCTAssertEqual(Self.hardWraps("{\"prompt\",\"completion\"} (loss on the\ncompletion) or chat"), ["{\"prompt\",\"completion\"} (loss on the⏎completion) or chat"])
        XCTAssertEqual(Self.hardWraps("Random checkpoints of the\nSmolLM2-135M shapes."), ["Random checkpoints of the⏎SmolLM2-135M shapes."])
        XCTAssertEqual(Self.hardWraps("  --block N   the N layers whose block has the\n              smallest distance").count, 1)
        XCTAssertEqual(Self.hardWraps("Examples:\n  finetune a -o out/healed\n  finetune --resume out/healed\n\nOne paragraph.\n\nAnother."), [])
    }

    func testEveryHelpParagraphIsOneLine() throws {
        for (command, text) in try helpTexts() {
            XCTAssertEqual(Self.hardWraps(text), [], "\(command) --help has a line broken mid-sentence (write each paragraph as one line)")
        }
    }
}
