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
        let checkpoint = try options.validatedCheckpoint()
        let sequences = try data.tokenized(with: options.optionalTokenizer())
        try data.checkIDs(sequences, vocabularySize: checkpoint.config.vocabSize)
        let ctx = clippedToPositions(context, of: checkpoint.config, at: options.model, asked: "--context")
        let windows = Evaluation.windows(sequences, context: ctx, stride: min(stride ?? ctx, ctx))
        guard !windows.isEmpty else { throw PruneError(file: data.url, "no sequence has two or more tokens") }
        let batch = min(batchSize, windows.count)
        let model = try options.loadModel(checkpoint, memory: {
            MemoryEstimate.inference(config: $0, batch: batch, context: ctx, threads: $1)
        }, job: "eval of \(batch) × \(ctx) tokens")
        let progress = ProgressReporter("eval", total: windows.count, enabled: !json)
        let tally = Evaluation.loss(model: model, windows: windows, batchSize: batchSize, progress: progress)
        let loss = tally.mean, perplexity = exp(tally.mean)
        if json {
            printJSON(["loss": loss, "perplexity": perplexity, "tokens": tally.count])
        } else if loss.isFinite {
            print(String(format: "loss %.6f  perplexity %.4f  tokens %d", loss, perplexity, tally.count))
        }
        // A NaN or infinite loss is a broken model, not a result: reported as such, exit 1.
        guard loss.isFinite, perplexity.isFinite else {
            throw PruneError(file: options.modelURL, "the loss is \(loss) (perplexity \(perplexity)) over \(tally.count) tokens: "
                             + "not a finite number (the weights or config.json give non-finite values)")
        }
    }
}
