// `prune analyze` as a library call: read the calibration set, load the model, measure every block and
// layer (LayerAnalyzer), write analysis.json, .h5 and the two SVGs. `prune cut --block/--metric` without
// an analysis.json runs the measuring part; a recipe runner or a test calls either.
import Analysis
import Data
import Cluster
import Foundation
import Llama
import Support
import Tokenizers

/// What an analysis measures and on what.
public struct AnalyzeOptions {
    /// Calibration data: .txt, JSONL with "text", or JSONL with pre-tokenized "input_ids".
    public var dataset: URL
    /// Records to use: the first N of the dataset with two or more tokens.
    public var samples = AnalyzeOptions.defaultSamples
    /// Tokens per sample (longer records are truncated; clipped to max_position_embeddings).
    public var context = AnalyzeOptions.defaultContext
    /// Block sizes n to rank, as written (e.g. "1-8" or "2,4,8"); nil ranks 1…L−1.
    public var blockSizes: String?
    /// Also measure the loss with each layer removed.
    public var removalScan = false
    /// Also measure each h_l through the final norm and lm_head.
    public var earlyExit = false
    /// Samples per forward pass.
    public var batchSize = AnalyzeOptions.defaultBatchSize
    /// Also the logit lens (LogitLens) over the first `LogitLensFiles.samples` samples, and the picture of
    /// `lensPrompt` (nil: the first sample's first `LogitLensFiles.pictureTokens` tokens).
    public var logitLens = false
    public var lensPrompt: String?

    /// The defaults of a calibration analysis (analyze, cut --dataset).
    public static let defaultSamples = 64, defaultContext = 256, defaultBatchSize = 4

    public init(dataset: URL, samples: Int = defaultSamples, context: Int = defaultContext, blockSizes: String? = nil,
                removalScan: Bool = false, earlyExit: Bool = false, batchSize: Int = defaultBatchSize, logitLens: Bool = false,
                lensPrompt: String? = nil) {
        self.dataset = dataset
        self.samples = samples
        self.context = context
        self.blockSizes = blockSizes
        self.removalScan = removalScan
        self.earlyExit = earlyExit
        self.batchSize = batchSize
        self.logitLens = logitLens
        self.lensPrompt = lensPrompt
    }

    /// Refuses sizes no analysis can run with, naming the flag (--samples, --context, --batch-size).
    public func validate() throws {
        guard samples >= 1 else { throw PruneError("--samples", "must be at least 1, got \(samples)") }
        guard context >= 2 else { throw PruneError("--context", "must be at least 2, got \(context)") }
        guard batchSize >= 1 else { throw PruneError("--batch-size", "must be at least 1, got \(batchSize)") }
    }
}

/// An analysis and the files it was written to.
public struct AnalyzeResult {
    public var analysis: LayerAnalysis
    /// analysis.json, analysis.h5, analysis.svg, analysis-layers.svg.
    public var files: [URL]
}

/// The analyze flow.
public enum AnalyzeJob {
    /// Checks `output` (never the model directory, never over an earlier analysis unless `force`), analyses
    /// `source` on `options.dataset` and writes the analysis files into `output`.
    /// - quiet: no plan note (warnings still go to `log`).
    /// - progress: where the analysis's progress events go (none without).
    /// - communicator: under mpirun, the ranks split the batches; rank 0 alone checks and writes the output
    ///   (the others return the same analysis and no files) and reports progress.
    public static func run(_ source: ModelSource, options: AnalyzeOptions, output: URL, force: Bool = false,
                           quiet: Bool = false, progress: ProgressSink? = nil, log: JobLog = .standardError,
                           communicator: Communicator = SingleProcess()) throws -> AnalyzeResult {
        if communicator.isRoot { try AnalysisDestination.check(output: output, model: source.directory, force: force) }
        let dataset = try Dataset(url: options.dataset)
        // The analysis's memory: a forward of batch × context with h_0…h_L kept, and the early-exit logits.
        let checkpoint = try source.validated()
        let ctx = min(options.context, checkpoint.config.maxPositionEmbeddings), batch = min(options.batchSize, options.samples)
        let model = try source.loadModel(checkpoint, memory: { c, threads in
            let states = MemoryEstimate.hiddenStates(config: c, batch: batch, context: ctx)
            return MemoryEstimate.inference(config: c, batch: batch, context: ctx, threads: threads, otherBytes: states)
        }, job: "analysis of \(batch) × \(ctx) tokens", log: log)
        let analysis = try analyze(model: model, source: source, dataset: dataset, tokenizer: source.optionalTokenizer(),
                                   options: options, quiet: quiet || !communicator.isRoot,
                                   progress: communicator.isRoot ? progress : nil, log: log, communicator: communicator)
        guard communicator.isRoot else { return AnalyzeResult(analysis: analysis, files: []) }
        try requireFinite(analysis, model: source.directory)
        var files = try AnalysisFiles.write(analysis, to: output)
        if options.logitLens {
            let tokenizer = try source.optionalTokenizer()
            let ctx = source.clippedToPositions(options.context, of: model, asked: "--context", log: .silent)
            let samples = try CalibrationSamples.select(from: dataset, tokenizer: tokenizer, count: min(options.samples, LogitLensFiles.samples), context: ctx)
            var prompt = Array(samples[0].prefix(LogitLensFiles.pictureTokens))
            if let text = options.lensPrompt {
                guard let tokenizer else { throw PruneError("--lens-prompt", "needs a tokenizer in \(source.path)") }
                prompt = Array(tokenizer.encode(text).prefix(LogitLensFiles.pictureTokens * 2))
                guard !prompt.isEmpty else { throw PruneError("--lens-prompt", "encodes to no tokens") }
                try dataset.checkIDs([prompt], vocabularySize: model.config.vocabSize)
            }
            let lens = LogitLens.measure(model: model, samples: samples, prompt: prompt,
                                         pieces: { ids in tokenizer.map { $0.pieces(ids) } ?? ids.map { "\($0)" } })
            files += try LogitLensFiles.write(lens, to: output)
        }
        return AnalyzeResult(analysis: analysis, files: files)
    }

    /// An analysis holding NaN or ±Inf (a model whose weights overflow), refused before anything is written;
    /// `json` is the analysis with null in their place, for a caller that prints it.
    public struct NonFiniteAnalysis: Error, CustomStringConvertible {
        public let json: Data
        public let error: PruneError
        public var description: String { error.description }
    }

    /// Throws `NonFiniteAnalysis` when `analysis` holds a non-finite value.
    public static func requireFinite(_ analysis: LayerAnalysis, model: URL) throws {
        let (data, nonFinite) = try FiniteJSON.encode(analysis)
        guard nonFinite > 0 else { return }
        throw NonFiniteAnalysis(json: data, error: PruneError(file: model, "the analysis has \(nonFinite) non-finite values (NaN or infinite; null in the JSON): "
                                + "the weights or config.json give non-finite hidden states or losses; nothing written"))
    }

    /// The calibration sequences `o` asks of `dataset` for `model`: the context clipped to its positions, the first
    /// `o.samples` records of two or more tokens, their ids checked against its vocabulary; each shortfall warned.
    static func calibrationSequences(model: LlamaModel, source: ModelSource, dataset: Dataset, tokenizer: Tokenizer?,
                                     options o: AnalyzeOptions, log: JobLog) throws -> (sequences: [[Int32]], context: Int) {
        let ctx = source.clippedToPositions(o.context, of: model, asked: "--context", log: log)
        let sequences = try CalibrationSamples.select(from: dataset, tokenizer: tokenizer, count: o.samples, context: ctx)
        try dataset.checkIDs(sequences, vocabularySize: model.config.vocabSize)
        if sequences.count < o.samples {
            log.warning("--samples \(o.samples) is more than \(dataset.url.path) holds (\(sequences.count) records of two or more tokens); using \(sequences.count)")
        }
        return (sequences, ctx)
    }

    /// Analyses a loaded `model` on `dataset` (no files written); `quiet`: no plan note; `progress`: where the
    /// progress events go.
    public static func analyze(model: LlamaModel, source: ModelSource, dataset: Dataset, tokenizer: Tokenizer?,
                               options o: AnalyzeOptions, quiet: Bool = false, progress: ProgressSink? = nil, log: JobLog = .standardError,
                               communicator: Communicator = SingleProcess()) throws -> LayerAnalysis {
        let L = model.config.numHiddenLayers
        var sizes: [Int]? = nil
        if let blockSizes = o.blockSizes {
            let parsed = try LayerSelection(parsing: blockSizes, option: "--block-sizes").layers
            if let bad = parsed.first(where: { $0 < 1 || $0 >= L }) {
                throw PruneError("--block-sizes", "block size \(bad) is outside 1…\(L - 1) (the model has \(L) layers)")
            }
            sizes = parsed
        }
        let (sequences, ctx) = try calibrationSequences(model: model, source: source, dataset: dataset, tokenizer: tokenizer,
                                                        options: o, log: communicator.isRoot ? log : .silent)
        let analyzer = LayerAnalyzer(model: model, options: AnalysisOptions(
            batchSize: o.batchSize, blockSizes: sizes, removalScan: o.removalScan, earlyExit: o.earlyExit))
        let plan = analyzer.plan(samples: sequences)
        if !quiet {
            // Said at once (stdout is the result): what was loaded and what the run will cost.
            let c = model.config
            let lines = [
                "model: \(source.path): \(L) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads)/\(c.numKeyValueHeads) heads, "
                    + "ffn \(c.intermediateSize), vocab \(c.vocabSize), \(model.parameterCount) parameters",
                "data: \(dataset.url.path): \(plan.samples) samples, \(plan.tokens) tokens (context \(ctx)), "
                    + "\(plan.batchFLOPs.count) batch\(plan.batchFLOPs.count == 1 ? "" : "es") of up to \(o.batchSize)",
                "phases, run on every batch:",
            ] + plan.summary
            log.note(lines.map { $0 + "\n" }.joined())
        }
        return analyzer.analyze(samples: sequences, source: AnalysisSource(model: source.path, dataset: dataset.url.path, context: ctx),
                                progress: progress.map { AnalysisProgress(plan: plan, sink: $0) }, communicator: communicator)
    }
}
