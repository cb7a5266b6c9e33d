import ArgumentParser
import Foundation
import Tokenizers

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
            _ = try options.validatedCheckpoint()
        }
        let tokenizer = try options.requiredTokenizer(for: "tokenizing")
        let ids = tokenizer.encode(text, addSpecialTokens: !noSpecialTokens)
        if json {
            printJSON(["ids": ids.map(Int.init)])
            return
        }
        // Beside each vocabulary piece ("Ġupon", "âľĵ", "▁upon") the text it adds, decoded in context as
        // generation prints it: byte-level pieces are unreadable otherwise.
        let pieces = tokenizer.pieces(ids)
        let width = pieces.map { $0.debugDescription.count }.max() ?? 0
        var decoder = StreamingDecoder(tokenizer: tokenizer, prompt: [], skipSpecialTokens: false)
        for (i, (id, piece)) in zip(ids, pieces).enumerated() {
            let quoted = piece.debugDescription
            let added = decoder.append(id)
            let partial = added.isEmpty && tokenizer.decode(Array(ids[...i]), skipSpecialTokens: false).hasSuffix("\u{FFFD}")
            print(String(format: "%8d  ", id) + quoted + String(repeating: " ", count: width - quoted.count) + "  "
                  + (partial ? "(part of a character)" : added.debugDescription))
        }
        print("\(ids.count) tokens")
    }
}
