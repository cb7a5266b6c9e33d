import ArgumentParser
import Checkpoint
import Foundation
import Jobs

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Show the pieces and ids of a text, as the checkpoint's tokenizer makes them.")

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Text to tokenize.")
    var text: String

    @Flag(name: .long, help: "Leave out BOS/EOS even where the tokenizer adds them.")
    var noSpecialTokens = false

    @Flag(name: .long, help: "Print {\"ids\": [...]} only.")
    var json = false

    func run() throws {
        // A checkpoint directory is checked as every command checks it; a folder of tokenizer files only
        // (no config.json) is tokenized as it is.
        if FileManager.default.fileExists(atPath: options.modelURL.appendingPathComponent("config.json").path) {
            _ = try CheckpointValidation.validate(options.modelURL)
        }
        let tokenizer = try options.source.requiredTokenizer(for: "tokenizing")
        let rows = TokenizeJob.rows(text, tokenizer: tokenizer, addSpecialTokens: !noSpecialTokens)
        if json {
            printJSON(["ids": rows.map { Int($0.id) }])
            return
        }
        // Beside each vocabulary piece ("Ġupon", "âľĵ", "▁upon") the text it adds, decoded in context.
        let width = rows.map { $0.piece.debugDescription.count }.max() ?? 0
        for row in rows {
            let quoted = row.piece.debugDescription
            print(String(format: "%8d  ", row.id) + quoted + String(repeating: " ", count: width - quoted.count) + "  "
                  + (row.partialCharacter ? "(part of a character)" : row.text.debugDescription))
        }
        print("\(rows.count) tokens")
    }
}
