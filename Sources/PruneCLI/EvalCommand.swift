import ArgumentParser
import Data
import Foundation
import Llama
import Reports
import Support

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
        let data = try Dataset(url: URL(fileURLWithPath: dataset))
        let model = try options.loadModel()
        let sequences = try data.tokenized(with: options.optionalTokenizer())
        try data.checkIDs(sequences, vocabularySize: model.config.vocabSize)
        let ctx = clippedToPositions(context, of: model, at: options.model, asked: "--context")
        let windows = Evaluation.windows(sequences, context: ctx, stride: min(stride ?? ctx, ctx))
        guard !windows.isEmpty else { throw PruneError(file: data.url, "no sequence has two or more tokens") }
        let progress = ProgressReporter("eval", total: windows.count, enabled: !json)
        let tally = Evaluation.loss(model: model, windows: windows, batchSize: batchSize, progress: progress)
        if json {
            printJSON(["loss": tally.mean, "perplexity": exp(tally.mean), "tokens": tally.count])
        } else {
            print(String(format: "loss %.6f  perplexity %.4f  tokens %d", tally.mean, exp(tally.mean), tally.count))
        }
    }
}
