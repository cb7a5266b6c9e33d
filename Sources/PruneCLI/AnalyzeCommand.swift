import Analysis
import ArgumentParser
import Data
import Foundation
import Llama
import Reports
import Support
import Surgery
import Tokenizers

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Measure which layers and blocks of layers change the residual stream least.",
        discussion: """
        One pass over the first --samples records of the dataset (each cut to \
        --context tokens) collects the hidden states h_0…h_L (h_l enters layer l) and \
        measures, for every block of n layers starting at layer l, the angular \
        distance d(l, n) = arccos(cos(h_l, h_{l+n}))/π at each sample's last token \
        and over all tokens, and each layer's Block Influence 1 − mean cos(h_i, h_{i+1}).

        Layers are 0-based; cutting block (l, n) drops layers l…l+n−1.

        Writes DIR/analysis.json, DIR/analysis.h5 (for h5py), DIR/analysis.svg \
        (heat map of the last-token d, the best block of each size outlined) and \
        DIR/analysis-layers.svg (Block Influence, removal and early-exit loss per layer).
        """)

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Calibration data: .txt, JSONL with \"text\", or JSONL with pre-tokenized \"input_ids\".")
    var dataset: String

    @Option(name: .long, help: "Records to use: the first N of the dataset with two or more tokens.")
    var samples = 64

    @Option(name: .long, help: "Tokens per sample (longer records are truncated).")
    var context = 256

    @Option(name: .long, help: "Block sizes n to rank, e.g. 1-8 or 2,4,8 (default: 1…L−1).")
    var blockSizes: String?

    @Flag(name: .long, help: "Also measure the loss with each layer removed (about L/2 more forward passes).")
    var removalScan = false

    @Flag(name: .long, help: "Also measure each h_l through the final norm and lm_head: its loss and top-1 agreement.")
    var earlyExit = false

    @Option(name: .long, help: "Samples per forward pass.")
    var batchSize = 4

    @Option(name: [.short, .customLong("output")], help: "Directory for analysis.json, analysis.h5 and the two SVGs (created if missing).")
    var output: String

    @Flag(name: .long, help: "Print the analysis as JSON instead of the table.")
    var json = false

    @Flag(name: .long, help: "Replace an earlier analysis in DIR.")
    var force = false

    func validate() throws {
        guard samples >= 1 else { throw ValidationError("--samples must be positive") }
        guard context >= 2 else { throw ValidationError("--context must be at least 2") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be positive") }
    }

    func run() throws {
        try AnalysisDestination.check(output: URL(fileURLWithPath: output), model: options.modelURL, force: force)
        let data = try Dataset(url: URL(fileURLWithPath: dataset))
        let model = try Self.loadModel(options, context: context, batchSize: batchSize, samples: samples)
        let analysis = try Self.analyze(model: model, modelPath: options.model, dataset: data,
                                        tokenizer: options.optionalTokenizer(), samples: samples, context: context,
                                        blockSizes: blockSizes, removalScan: removalScan, earlyExit: earlyExit,
                                        batchSize: batchSize, quiet: json)
        try Self.requireFinite(analysis, model: options.modelURL, printingJSON: json)
        let written = try AnalysisFiles.write(analysis, to: URL(fileURLWithPath: output))
        if json {
            print(String(decoding: try JSONEncoder.sorted.encode(analysis), as: UTF8.self))
        } else {
            print(AnalysisReport.text(analysis), terminator: "")
            print("\nwrote " + written.map(\.path).joined(separator: ", "))
        }
    }

    /// The model, once the analysis's memory (a forward of `batchSize` × context with h_0…h_L kept, and
    /// the early-exit view's logits) is known to fit.
    static func loadModel(_ options: ModelOptions, context: Int, batchSize: Int, samples: Int) throws -> LlamaModel {
        let checkpoint = try options.validatedCheckpoint()
        let ctx = min(context, checkpoint.config.maxPositionEmbeddings), batch = min(batchSize, samples)
        return try options.loadModel(checkpoint, memory: { c, threads in
            let states = MemoryEstimate.hiddenStates(config: c, batch: batch, context: ctx)
            return MemoryEstimate.inference(config: c, batch: batch, context: ctx, threads: threads, otherBytes: states)
        }, job: "analysis of \(batch) × \(ctx) tokens")
    }

    /// Refuses an analysis holding NaN or ±Inf (a model whose weights overflow): nothing is written, the
    /// JSON (with null there) is printed when asked for, and the error says how many values were not finite.
    static func requireFinite(_ analysis: LayerAnalysis, model: URL, printingJSON: Bool) throws {
        let (data, nonFinite) = try FiniteJSON.encode(analysis)
        guard nonFinite > 0 else { return }
        if printingJSON { print(String(decoding: data, as: UTF8.self)) }
        throw PruneError(file: model, "the analysis has \(nonFinite) non-finite values (NaN or infinite; null in the JSON): "
                         + "the weights or config.json give non-finite hidden states or losses; nothing written")
    }

    /// Runs an analysis as the command does (also used by `prune cut --block/--metric` without --analysis).
    static func analyze(model: LlamaModel, modelPath: String, dataset: Dataset, tokenizer: Tokenizer?, samples: Int,
                        context: Int, blockSizes: String?, removalScan: Bool, earlyExit: Bool, batchSize: Int,
                        quiet: Bool) throws -> LayerAnalysis {
        let L = model.config.numHiddenLayers
        var sizes: [Int]? = nil
        if let blockSizes {
            let parsed = try LayerSelection(parsing: blockSizes, option: "--block-sizes").layers
            if let bad = parsed.first(where: { $0 < 1 || $0 >= L }) {
                throw PruneError("--block-sizes", "block size \(bad) is outside 1…\(L - 1) (the model has \(L) layers)")
            }
            sizes = parsed
        }
        let ctx = clippedToPositions(context, of: model.config, at: modelPath, asked: "--context")
        let sequences = try CalibrationSamples.select(from: dataset, tokenizer: tokenizer, count: samples, context: ctx)
        try dataset.checkIDs(sequences, vocabularySize: model.config.vocabSize)
        if sequences.count < samples {
            warn("--samples \(samples) is more than \(dataset.url.path) holds (\(sequences.count) records of two or more tokens); using \(sequences.count)")
        }
        let analyzer = LayerAnalyzer(model: model, options: AnalysisOptions(
            batchSize: batchSize, blockSizes: sizes, removalScan: removalScan, earlyExit: earlyExit))
        let plan = analyzer.plan(samples: sequences)
        if !quiet {
            // Said at once, on stderr (stdout is the result): what was loaded and what the run will cost.
            let c = model.config
            let lines = [
                "model: \(modelPath): \(L) layers, hidden \(c.hiddenSize), \(c.numAttentionHeads)/\(c.numKeyValueHeads) heads, "
                    + "ffn \(c.intermediateSize), vocab \(c.vocabSize), \(model.parameterCount) parameters",
                "data: \(dataset.url.path): \(plan.samples) samples, \(plan.tokens) tokens (context \(ctx)), "
                    + "\(plan.batchFLOPs.count) batch\(plan.batchFLOPs.count == 1 ? "" : "es") of up to \(batchSize)",
                "phases, run on every batch:",
            ] + plan.summary
            FileHandle.standardError.write(Data(lines.map { $0 + "\n" }.joined().utf8))
        }
        let progress = quiet ? nil : AnalysisProgress(plan: plan)
        return analyzer.analyze(samples: sequences, source: AnalysisSource(model: modelPath, dataset: dataset.url.path, context: ctx),
                                progress: progress)
    }
}
