import ArgumentParser
import CLISupport
import Foundation
import Jobs

struct CutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cut",
        abstract: "Write a copy of a checkpoint without some of its layers.",
        discussion: """
        Choose the layers in one of three ways (0-based, inclusive):
          --layers 11-18          exactly these layers (also lists: 3,7-9)
          --block N               the block of N layers with the least last-token angular distance
          --metric bi --count K   the K layers with the lowest Block Influence

        --block and --metric read an analysis.json written by `prune analyze` (--analysis), or run a fresh analysis on --dataset.

        --force also cuts layer 0, the last layer or more than half of the layers, which are refused otherwise.

        Besides deleting the layers, --replace changes the kept layer before each removed block (training-free):
          --replace replaceme     a linear map of the block's effect, least squares on --dataset, folded into its down_proj
          --replace laco          the block's parameter differences merged into it (LaCo)

        The output is a complete Hugging Face checkpoint: config.json with num_hidden_layers and per-layer lists updated (every other key kept), layers renumbered, tensors in their original dtype unless --dtype is given, tied embeddings still tied, sharding kept, tokenizer and generation files copied.
        """)

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Layers to remove, 0-based inclusive, e.g. 11-18 or 3,7-9.")
    var layers: String?

    @Option(name: .long, help: "Remove the best block of this many consecutive layers (by last-token angular distance).")
    var block: Int?

    @Option(name: .long, help: "Rank single layers by this metric and remove the lowest: bi (Block Influence).")
    var metric: String?

    @Option(name: .long, help: "With --metric: how many layers to remove.")
    var count: Int?

    @Option(name: .long, help: "analysis.json from `prune analyze` on this model, for --block / --metric.")
    var analysis: String?

    @Option(name: [.customLong("dataset"), .customLong("calibration")],
            help: "Calibration data: for --block / --metric without --analysis, and for --replace replaceme.")
    var dataset: String?

    @Option(name: .long, help: "replaceme or laco: also change the layer before each removed block (see above).")
    var replace: String?

    @OptionGroup(title: "With --dataset") var calibration: CalibrationOptions

    @OptionGroup var destination: CheckpointOutputOptions

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
        if let replace, !["replaceme", "laco"].contains(replace) { throw ValidationError("--replace must be replaceme or laco") }
        if replace == "replaceme" && dataset == nil { throw ValidationError("--replace replaceme needs calibration data: --dataset FILE") }
        if layers != nil && analysis != nil { throw ValidationError("--analysis goes with --block or --metric, not --layers") }
        if layers != nil && dataset != nil && replace != "replaceme" {
            throw ValidationError("--dataset goes with --block, --metric or --replace replaceme, not --layers alone")
        }
        if let block { guard block >= 1 else { throw ValidationError("--block must be positive") } }
        if let count { guard count >= 1 else { throw ValidationError("--count must be positive") } }
    }

    func run() throws {
        let source = options.source
        let cutOptions = CutOptions(method: try method(), analysis: analysisSource, output: URL(fileURLWithPath: destination.output),
                                    force: destination.force, dtype: try destination.storage.storedDType(),
                                    command: ["prune"] + CommandLine.arguments.dropFirst(), tool: Self.tool,
                                    replace: replacement)
        let choice = try CutJob.choose(source, options: cutOptions, quiet: json, progress: json ? nil : ProgressPrinter().sink)
        if !json, let announcement = choice.announcement { print(announcement) }
        let report = try CutJob.cut(source, choice: choice, options: cutOptions, quiet: json, progress: json ? nil : ProgressPrinter().sink)
        if json {
            print(String(decoding: try JSONEncoder.sorted.encode(report), as: UTF8.self))
        } else {
            print(report.text, terminator: "")
        }
    }

    /// "prune" and its version, one line, for the model card of the cut.
    static var tool: String { "prune \(SystemReport.version)" }

    /// --layers, --block or --metric bi --count K.
    func method() throws -> CutMethod {
        if let layers { return .layers(layers) }
        if let block { return .block(block) }
        return .lowestInfluence(count: count!)
    }

    /// --replace replaceme (on --dataset) or laco.
    var replacement: CutReplacement? {
        switch replace {
        case "replaceme": dataset.map { .replaceme(calibration.analysis(of: $0)) }
        case "laco": .laco
        default: nil
        }
    }

    /// --analysis FILE.json or a fresh analysis on --dataset.
    var analysisSource: CutAnalysisSource? {
        if let analysis { return .file(URL(fileURLWithPath: analysis)) }
        return layers == nil ? dataset.map { .fresh(calibration.analysis(of: $0)) } : nil
    }
}
