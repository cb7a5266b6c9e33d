import Analysis
import ArgumentParser
import Checkpoint
import Data
import Foundation
import Llama
import Support
import Surgery

struct CutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cut",
        abstract: "Write a copy of a checkpoint without some of its layers.",
        discussion: """
        Choose the layers in one of three ways (0-based, inclusive):
          --layers 20-27          exactly these layers (also lists: 3,7-9)
          --block N               the N consecutive layers whose block has the
                                  smallest last-token angular distance
          --metric bi --count K   the K layers with the lowest Block Influence

        --block and --metric read an analysis.json written by `prune analyze` \
        (--analysis), or run a fresh analysis on --dataset.

        The output is a complete Hugging Face checkpoint: config.json with \
        num_hidden_layers and per-layer lists updated (every other key kept), layers \
        renumbered, tensors in their original dtype unless --dtype is given, tied \
        embeddings still tied, sharding kept, tokenizer and generation files copied.
        """)

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Layers to remove, 0-based inclusive, e.g. 20-27 or 3,7-9.")
    var layers: String?

    @Option(name: .long, help: "Remove the best block of this many consecutive layers (by last-token angular distance).")
    var block: Int?

    @Option(name: .long, help: "Rank single layers by this metric and remove the lowest: bi (Block Influence).")
    var metric: String?

    @Option(name: .long, help: "With --metric: how many layers to remove.")
    var count: Int?

    @Option(name: .long, help: "analysis.json from `prune analyze` on this model, for --block / --metric.")
    var analysis: String?

    @Option(name: .long, help: "For --block / --metric without --analysis: calibration data to analyse.")
    var dataset: String?

    @Option(name: .long, help: "With --dataset: records to use.")
    var samples = 64

    @Option(name: .long, help: "With --dataset: tokens per sample.")
    var context = 256

    @Option(name: .long, help: "With --dataset: samples per forward pass.")
    var batchSize = 4

    @Option(name: [.short, .customLong("output")], help: "Directory for the cut checkpoint.")
    var output: String

    @Flag(name: .long, help: "Replace OUT if it exists and is not empty.")
    var force = false

    @Option(name: .long, help: "Store the weights as f32, bf16 or f16 (default: keep each tensor's dtype and bytes).")
    var dtype: String?

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        let ways = [layers != nil, block != nil, metric != nil].filter { $0 }.count
        guard ways == 1 else { throw ValidationError("give exactly one of --layers, --block, --metric") }
        if metric != nil && count == nil { throw ValidationError("--metric needs --count") }
        if count != nil && metric == nil { throw ValidationError("--count goes with --metric") }
        if let metric, metric.lowercased() != "bi" { throw ValidationError("--metric must be bi") }
        if layers == nil && (analysis == nil) == (dataset == nil) {
            throw ValidationError("--block and --metric need either --analysis FILE.json or --dataset FILE")
        }
        if layers != nil && (analysis != nil || dataset != nil) {
            throw ValidationError("--analysis and --dataset go with --block or --metric, not --layers")
        }
        if let block { guard block >= 1 else { throw ValidationError("--block must be positive") } }
        if let count { guard count >= 1 else { throw ValidationError("--count must be positive") } }
        guard samples >= 1, context >= 2, batchSize >= 1 else {
            throw ValidationError("--samples and --batch-size must be positive and --context at least 2")
        }
    }

    func run() throws {
        let cutter = LayerCutter(model: options.modelURL)
        let outputDType = try dtype.map(Self.parseDType)
        let (drop, selection) = try chooseLayers(layerCount: try cutter.layerCount())
        let report = try cutter.cut(dropping: drop, to: URL(fileURLWithPath: output), dtype: outputDType, force: force,
                                    selection: selection, command: ["prune"] + CommandLine.arguments.dropFirst(), tool: Self.tool)
        if json {
            print(String(decoding: try JSONEncoder.sorted.encode(report), as: UTF8.self))
        } else {
            print(report.text, terminator: "")
        }
    }

    /// "prune" and its version (when the build has one), for the model card of the cut.
    static var tool: String {
        let version = Prune.configuration.version
        return version.isEmpty ? "prune" : "prune \(version)"
    }

    /// The layers to drop from --layers, or from an analysis for --block / --metric, and how they were chosen.
    func chooseLayers(layerCount L: Int) throws -> (LayerSelection, CutSelection) {
        if let layers {
            let selection = try LayerSelection(parsing: layers)
            return (selection, CutSelection(method: "layers", option: "--layers \(layers)", reason: "given explicitly"))
        }
        let result = try loadOrRunAnalysis(layerCount: L)
        func chosen(_ method: String, _ option: String, _ reason: String) -> CutSelection {
            CutSelection(method: method, option: option, analysis: analysis, dataset: analysis == nil ? dataset : nil, reason: reason)
        }
        if let block {
            guard block < L else { throw PruneError("--block", "a block of \(block) layers would leave none (the model has \(L))") }
            let ranked = BlockRanking.ranked(result.angularDistance.lastToken, size: block)
            guard let best = ranked.first else { throw PruneError("--block", "the analysis has no block of \(block) layers") }
            let reason = String(format: "best block of %d: layers %@ (d = %.4f)", block, LayerSelection(best.layers).description, best.distance)
            if !json { print(reason) }
            return (LayerSelection(best.layers),
                    chosen("block", "--block \(block)", reason + ", the smallest last-token angular distance between its input and output"))
        }
        guard let k = count else { throw PruneError("--metric", "needs --count") }
        guard k < L else { throw PruneError("--count", "removing \(k) layers would leave none (the model has \(L))") }
        let lowest = result.lowestInfluenceLayers(k)
        if !json { print("lowest Block Influence: layers \(LayerSelection(lowest))") }
        return (LayerSelection(lowest), chosen("metric", "--metric bi --count \(k)",
                                               "the \(k) layers with the lowest Block Influence: \(LayerSelection(lowest))"))
    }

    func loadOrRunAnalysis(layerCount L: Int) throws -> LayerAnalysis {
        if let analysis {
            let url = URL(fileURLWithPath: analysis)
            let result = try AnalysisFiles.readJSON(url)
            guard result.layers == L else {
                throw PruneError(file: url, "analyses a model of \(result.layers) layers, but \(options.model) has \(L)")
            }
            return result
        }
        guard let dataset else { throw PruneError("--dataset", "--block and --metric need --analysis or --dataset") }
        let data = try Dataset(url: URL(fileURLWithPath: dataset))
        let model = try AnalyzeCommand.loadModel(options, context: context, batchSize: batchSize, samples: samples)
        let result = try AnalyzeCommand.analyze(model: model, modelPath: options.model, dataset: data,
                                                tokenizer: options.optionalTokenizer(), samples: samples, context: context,
                                                blockSizes: nil, removalScan: false, earlyExit: false, batchSize: batchSize,
                                                quiet: json)
        try AnalyzeCommand.requireFinite(result, model: options.modelURL, printingJSON: false)
        return result
    }

    static func parseDType(_ s: String) throws -> SafetensorsDType {
        switch s.lowercased() {
        case "f32", "fp32", "float32": .F32
        case "bf16", "bfloat16": .BF16
        case "f16", "fp16", "float16": .F16
        default: throw PruneError("--dtype", "\"\(s)\" is not one of f32, bf16, f16")
        }
    }
}
