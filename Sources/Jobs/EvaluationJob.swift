// `prune eval` as a library call: the mean next-token loss and perplexity of a checkpoint on a dataset,
// over sliding windows (each target counted once).
import Data
import Foundation
import Llama
import Support

/// The windows an evaluation runs on.
public struct EvaluationOptions {
    /// .txt, JSONL with "text", or JSONL with pre-tokenized "input_ids".
    public var dataset: URL
    /// Tokens per window (clipped to max_position_embeddings).
    public var context = EvaluationOptions.defaultContext
    /// Tokens between window starts; nil = `context` (no overlap beyond the one shared token).
    public var stride: Int?
    /// Windows per forward pass.
    public var batchSize = EvaluationOptions.defaultBatchSize
    /// The original model: also measure KL(original ‖ model) and top-1 agreement on the same windows.
    public var reference: URL?

    /// The defaults of an evaluation (`prune eval`).
    public static let defaultContext = 256, defaultBatchSize = 4

    public init(dataset: URL, context: Int = defaultContext, stride: Int? = nil, batchSize: Int = defaultBatchSize) {
        self.dataset = dataset
        self.context = context
        self.stride = stride
        self.batchSize = batchSize
    }

    /// Refuses windows no evaluation can run with, naming the flag (--context, --stride, --batch-size).
    public func validate() throws {
        guard context >= 2 else { throw PruneError("--context", "must be at least 2, got \(context)") }
        if let stride, !(1...context).contains(stride) { throw PruneError("--stride", "must be in 1…\(context) (the context), got \(stride)") }
        guard batchSize >= 1 else { throw PruneError("--batch-size", "must be at least 1, got \(batchSize)") }
    }
}

/// Loss, perplexity and the targets counted.
public struct EvaluationResult: Sendable {
    /// Mean next-token cross-entropy (nats).
    public var loss: Double
    /// exp(loss).
    public var perplexity: Double { exp(loss) }
    /// Targets counted.
    public var tokens: Int
    /// Against `EvaluationOptions.reference`, when given.
    public var comparison: ReferenceComparison?
}

/// The eval flow.
public enum EvaluationJob {
    /// Evaluates `source` on `options.dataset` (the checkpoint validated and its memory checked before loading);
    /// with `options.reference`, also compares it with that original. `progress` hears how far each pass is.
    public static func run(_ source: ModelSource, options o: EvaluationOptions, progress: ProgressSink? = nil,
                           log: JobLog = .standardError) throws -> EvaluationResult {
        let checkpoint = try source.validated()
        let ctx = min(o.context, checkpoint.config.maxPositionEmbeddings)
        let model = try source.loadModel(checkpoint, memory: {
            MemoryEstimate.inference(config: $0, batch: o.batchSize, context: ctx, threads: $1)
        }, job: "eval of \(o.batchSize) × \(ctx) tokens", log: log)
        let reference = try o.reference.map { try ModelSource(path: $0.path, parallelism: source.parallelism, compute: source.compute).loadModel(log: log) }
        let (result, comparison) = try evaluate(model, source: source, options: o, reference: reference, progress: progress, log: log)
        var out = result
        out.comparison = comparison
        return out
    }

    /// Evaluates a loaded `model` (of `source`) on the windows `run` uses and, given a `reference` model sharing
    /// the vocabulary, compares its next-token distributions with the reference's on the same positions.
    public static func evaluate(_ model: LlamaModel, source: ModelSource, options o: EvaluationOptions, reference: LlamaModel? = nil,
                                progress: ProgressSink? = nil, log: JobLog = .standardError) throws -> (result: EvaluationResult, comparison: ReferenceComparison?) {
        let data = try Dataset(url: o.dataset)
        let sequences = try data.tokenized(with: source.optionalTokenizer())
        try data.checkIDs(sequences, vocabularySize: model.config.vocabSize)
        let ctx = source.clippedToPositions(o.context, of: model, asked: "--context", log: log)
        let windows = Evaluation.windows(sequences, context: ctx, stride: min(o.stride ?? ctx, ctx))
        guard !windows.isEmpty else { throw PruneError(file: data.url, "no sequence has two or more tokens") }
        let reporter = progress.map { ProgressReporter("eval", total: windows.count, sink: $0) }
        let tally = Evaluation.loss(model: model, windows: windows, batchSize: o.batchSize, progress: reporter)
        var comparison: ReferenceComparison?
        if let reference {
            guard reference.config.vocabSize == model.config.vocabSize else {
                throw PruneError(source.path, "vocabulary of \(model.config.vocabSize) differs from the reference's \(reference.config.vocabSize)")
            }
            comparison = ReferenceComparison.compare(model: model, reference: reference, windows: windows, batchSize: o.batchSize,
                                                     progress: progress.map { ProgressReporter("compare with the original", total: windows.count, sink: $0) })
        }
        return (EvaluationResult(loss: tally.mean, tokens: tally.count, comparison: comparison), comparison)
    }
}
