// `prune eval` as a library call: the mean next-token loss and perplexity of a checkpoint on a dataset,
// over sliding windows (each target counted once).
import Data
import Foundation
import Llama
import Reports
import Support

/// The windows an evaluation runs on.
public struct EvaluationOptions {
    /// .txt, JSONL with "text", or JSONL with pre-tokenized "input_ids".
    public var dataset: URL
    /// Tokens per window (clipped to max_position_embeddings).
    public var context = 256
    /// Tokens between window starts; nil = `context` (no overlap beyond the one shared token).
    public var stride: Int?
    /// Windows per forward pass.
    public var batchSize = 4

    public init(dataset: URL, context: Int = 256, stride: Int? = nil, batchSize: Int = 4) {
        self.dataset = dataset
        self.context = context
        self.stride = stride
        self.batchSize = batchSize
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
}

/// The eval flow.
public enum EvaluationJob {
    /// Evaluates `source` on `options.dataset`; `progress` shows a progress line on stderr.
    public static func run(_ source: ModelSource, options o: EvaluationOptions, progress: Bool = true,
                           log: JobLog = .standardError) throws -> EvaluationResult {
        let data = try Dataset(url: o.dataset)
        // An unreadable checkpoint gets no estimate: the load below says what is wrong with it.
        if let estimate = try? source.forwardEstimate(batch: o.batchSize, length: o.context) {
            try estimate.check(source.path)
            if source.verbose { log.note("memory estimate: \(estimate)\n") }
        }
        let model = try source.loadModel(log: log)
        let sequences = try data.tokenized(with: source.optionalTokenizer())
        try data.checkIDs(sequences, vocabularySize: model.config.vocabSize)
        let ctx = source.clippedToPositions(o.context, of: model, asked: "--context", log: log)
        let windows = Evaluation.windows(sequences, context: ctx, stride: min(o.stride ?? ctx, ctx))
        guard !windows.isEmpty else { throw PruneError(file: data.url, "no sequence has two or more tokens") }
        let reporter = ProgressReporter("eval", total: windows.count, enabled: progress)
        let tally = Evaluation.loss(model: model, windows: windows, batchSize: o.batchSize, progress: reporter)
        return EvaluationResult(loss: tally.mean, tokens: tally.count)
    }
}
