import ArgumentParser
import CLISupport
import Foundation
import Jobs
import Support

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Mean next-token loss and perplexity of a model on a dataset, or its zero-shot accuracy on a multiple-choice task.",
        discussion: "Give exactly one of --dataset (loss and perplexity) and --task (acc and acc_norm with their standard errors, as lm-eval-harness scores a zero-shot multiple_choice task: each choice's summed log-likelihood after the context and one space; acc_norm divides it by the choice's length in characters).")

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Dataset: .txt, JSONL with \"text\", or JSONL with pre-tokenized \"input_ids\".")
    var dataset: String?

    @Option(name: .long, help: "Multiple-choice task: JSONL, one {\"context\": \"…\", \"choices\": [\"…\", …], \"gold\": 0-based index} per line.")
    var task: String?

    @OptionGroup var windows: WindowOptions<EvaluationWindows>
    @OptionGroup var precision: ComputeOption

    @Option(name: .long, help: "Tokens between window starts (--dataset; each target is counted once).")
    var stride: Int?

    @Option(name: .long, help: "The original checkpoint (before a cut or healing), with --dataset: also report the mean KL divergence of this model's next-token distribution from the original's and their top-1 agreement, on the same tokens.")
    var reference: String?

    @Flag(name: .long, help: "Print one JSON object: {loss, perplexity, tokens} (+ kl, top1_agreement with --reference), or with --task {acc, acc_stderr, acc_norm, acc_norm_stderr, n}.")
    var json = false

    func validate() throws {
        guard (dataset == nil) != (task == nil) else { throw ValidationError("give exactly one of --dataset and --task") }
        if task != nil {
            let datasetOnly = [("--context", windows.context != nil), ("--stride", stride != nil), ("--reference", reference != nil)]
            if let (name, _) = datasetOnly.first(where: { $0.1 }) { throw ValidationError("\(name) applies to --dataset, not --task") }
            if let batchSize = windows.batchSize { guard batchSize >= 1 else { throw ValidationError("--batch-size must be positive") } }
        } else {
            try asUsageError { try evaluation.validate() }
        }
    }

    /// The evaluation these flags ask for (with --dataset).
    var evaluation: EvaluationOptions {
        var o = EvaluationOptions(dataset: URL(fileURLWithPath: dataset ?? ""), context: windows.context ?? EvaluationOptions.defaultContext,
                                  stride: stride, batchSize: windows.batchSize ?? EvaluationOptions.defaultBatchSize)
        o.reference = reference.map { URL(fileURLWithPath: $0) }
        return o
    }

    func run() throws {
        if let task { return try score(task: task) }
        let o = evaluation
        let result = try EvaluationJob.run(options.source(compute: precision.compute), options: o, progress: json ? nil : ProgressPrinter().sink)
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

    func score(task: String) throws {
        let scores = try TaskScoringJob.run(options.source(compute: precision.compute), options: TaskScoringOptions(task: URL(fileURLWithPath: task), batchSize: windows.batchSize ?? TaskScoringOptions.defaultBatchSize),
                                            progress: json ? nil : ProgressPrinter().sink)
        if json {
            try printJSON(encoding: scores)
            return
        }
        func withError(_ value: Double, _ stderr: Double?) -> String {
            String(format: "%.4f ± ", value) + (stderr.map { String(format: "%.4f", $0) } ?? "n/a")
        }
        print("acc \(withError(scores.acc, scores.accStderr))  acc_norm \(withError(scores.accNorm, scores.accNormStderr))  (n = \(scores.n))")
    }
}

/// An evaluation's windows (EvaluationOptions' defaults), or with --task its scored choices (TaskScoringOptions').
enum EvaluationWindows: WindowDefaults {
    static let contextHelp = "Tokens per window (--dataset; default \(EvaluationOptions.defaultContext))."
    static let batchSizeHelp = "Windows (--dataset; default \(EvaluationOptions.defaultBatchSize)) or scored choices (--task; default \(TaskScoringOptions.defaultBatchSize)) per forward pass."
}
