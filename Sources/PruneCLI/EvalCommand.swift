import ArgumentParser
import CLISupport
import Foundation
import Jobs
import Support

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Mean next-token loss and perplexity of a model on a dataset.")

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Dataset: .txt, JSONL with \"text\", or JSONL with pre-tokenized \"input_ids\".")
    var dataset: String

    @Option(name: .long, help: "Tokens per window.")
    var context = EvaluationOptions.defaultContext

    @Option(name: .long, help: "Tokens between window starts (each target is counted once).")
    var stride: Int?

    @Option(name: .long, help: "Windows per forward pass.")
    var batchSize = EvaluationOptions.defaultBatchSize

    @Option(name: .long, help: "The original checkpoint (before a cut or healing): also report the mean KL divergence of this model's next-token distribution from the original's and their top-1 agreement, on the same tokens.")
    var reference: String?

    @Flag(name: .long, help: "Print one JSON object {loss, perplexity, tokens} (+ kl, top1_agreement with --reference).")
    var json = false

    func validate() throws {
        try asUsageError { try evaluation.validate() }
    }

    /// The evaluation these flags ask for.
    var evaluation: EvaluationOptions {
        var o = EvaluationOptions(dataset: URL(fileURLWithPath: dataset), context: context, stride: stride, batchSize: batchSize)
        o.reference = reference.map { URL(fileURLWithPath: $0) }
        return o
    }

    func run() throws {
        let o = evaluation
        let result = try EvaluationJob.run(options.source, options: o, progress: json ? nil : ProgressPrinter().sink)
        if json {
            var obj: [String: Any] = ["loss": result.loss, "perplexity": result.perplexity, "tokens": result.tokens]
            if let c = result.comparison { obj["kl"] = c.meanKL; obj["top1_agreement"] = c.top1Agreement }
            printJSON(obj)
        } else if result.loss.isFinite {
            print(String(format: "loss %.6f  perplexity %.4f  tokens %d", result.loss, result.perplexity, result.tokens))
            if let c = result.comparison {
                print(String(format: "vs %@: mean KL %.4f nats, top-1 agreement %.1f%% (%d positions)", reference ?? "", c.meanKL,
                             100 * c.top1Agreement, c.positions))
            }
        }
        // A NaN or infinite loss is a broken model, not a result: reported as such, exit 1.
        guard result.loss.isFinite, result.perplexity.isFinite else {
            throw PruneError(file: options.modelURL, "the loss is \(result.loss) (perplexity \(result.perplexity)) over \(result.tokens) tokens: "
                             + "not a finite number (the weights or config.json give non-finite values)")
        }
    }
}
