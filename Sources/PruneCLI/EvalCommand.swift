import ArgumentParser
import Foundation
import Pipeline

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Mean next-token loss and perplexity of a model on a dataset.")

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Dataset: .txt, JSONL with \"text\", or JSONL with pre-tokenized \"input_ids\".")
    var dataset: String

    @Option(name: .long, help: "Tokens per window.")
    var context = 256

    @Option(name: .long, help: "Tokens between window starts (each target is counted once).")
    var stride: Int?

    @Option(name: .long, help: "Windows per forward pass.")
    var batchSize = 4

    @Flag(name: .long, help: "Print one JSON object {loss, perplexity, tokens}.")
    var json = false

    func validate() throws {
        guard context >= 2 else { throw ValidationError("--context must be at least 2") }
        if let stride { guard stride >= 1 && stride <= context else { throw ValidationError("--stride must be in 1…context") } }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be positive") }
    }

    func run() throws {
        let result = try EvaluationJob.run(options.source, options: EvaluationOptions(
            dataset: URL(fileURLWithPath: dataset), context: context, stride: stride, batchSize: batchSize), progress: !json)
        if json {
            printJSON(["loss": result.loss, "perplexity": result.perplexity, "tokens": result.tokens])
        } else {
            print(String(format: "loss %.6f  perplexity %.4f  tokens %d", result.loss, result.perplexity, result.tokens))
        }
    }
}
