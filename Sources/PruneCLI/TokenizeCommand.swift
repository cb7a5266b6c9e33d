import ArgumentParser
import Foundation

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
        let tokenizer = try options.loadTokenizer()
        let ids = tokenizer.encode(text, addSpecialTokens: !noSpecialTokens)
        if json {
            printJSON(["ids": ids.map(Int.init)])
            return
        }
        let pieces = tokenizer.pieces(ids)
        for (id, piece) in zip(ids, pieces) {
            print(String(format: "%8d  ", id) + piece.debugDescription)
        }
        print("\(ids.count) tokens")
    }
}
