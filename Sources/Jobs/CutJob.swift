// `prune cut` as a library call: choose the layers to drop (given, the best block by angular distance, or
// the lowest Block Influence, from an analysis.json or a fresh analysis) and write the smaller checkpoint.
// The choice and the cut are two calls so that the caller can show the choice before the (long) write.
import Analysis
import Checkpoint
import Data
import Foundation
import Llama
import Support
import Surgery

/// How the layers to drop are chosen.
public enum CutMethod: Equatable {
    /// Exactly these layers, 0-based inclusive ("11-18", "3,7-9").
    case layers(String)
    /// The best block of this many consecutive layers (smallest last-token angular distance).
    case block(Int)
    /// The this-many layers with the lowest Block Influence.
    case lowestInfluence(count: Int)
}

/// Where the analysis behind --block / --metric comes from.
public enum CutAnalysisSource {
    /// An analysis.json written by `prune analyze` on this model.
    case file(URL)
    /// A fresh analysis (no block sizes, removal scan or early exit) on this calibration data.
    case fresh(AnalyzeOptions)
}

/// What a cut does besides deleting the layers (Surgery's CutRepair, estimated here where it needs data).
public enum CutReplacement {
    /// ReplaceMe: a linear map estimated on this calibration data (dataset, samples, context, batch size).
    case replaceme(AnalyzeOptions)
    /// LaCo: the removed layers' parameter differences merged into the layer before them.
    case laco
}

/// What to cut and where to write it.
public struct CutOptions {
    public var method: CutMethod
    /// Needed by `.block` and `.lowestInfluence`.
    public var analysis: CutAnalysisSource?
    /// Directory for the cut checkpoint.
    public var output: URL
    /// Replace `output` if it exists and is not empty, and cut what CutDamageGuard refuses (layer 0, the last layer,
    /// more than half of the layers).
    public var force = false
    /// Store the weights as F32, BF16 or F16 (nil keeps each tensor's dtype and bytes).
    public var dtype: SafetensorsDType?
    /// The command line that made the cut and the tool, for the model card and prune_cut.json.
    public var command: [String] = []
    public var tool = "prune"
    /// nil: the layers are only deleted.
    public var replace: CutReplacement?

    public init(method: CutMethod, analysis: CutAnalysisSource? = nil, output: URL, force: Bool = false,
                dtype: SafetensorsDType? = nil, command: [String] = [], tool: String = "prune", replace: CutReplacement? = nil) {
        self.replace = replace
        self.method = method
        self.analysis = analysis
        self.output = output
        self.force = force
        self.dtype = dtype
        self.command = command
        self.tool = tool
    }
}

/// The layers chosen and why.
public struct CutChoice {
    public var drop: LayerSelection
    public var selection: CutSelection
    /// For --block / --metric, the one line that says what was chosen (printed before the cut), e.g.
    /// "best block of 2: layers 2-3 (d = 0.2079)".
    public var announcement: String?

    package init(drop: LayerSelection, selection: CutSelection, announcement: String? = nil) {
        self.drop = drop
        self.selection = selection
        self.announcement = announcement
    }
}

/// The cut flow.
public enum CutJob {
    /// Chooses and cuts; `quiet` silences a fresh analysis's plan note, `progress` hears how far it is.
    public static func run(_ source: ModelSource, options: CutOptions, quiet: Bool = false, progress: ProgressSink? = nil,
                           log: JobLog = .standardError) throws -> (CutChoice, CutReport) {
        let choice = try choose(source, options: options, quiet: quiet, progress: progress, log: log)
        return (choice, try cut(source, choice: choice, options: options, quiet: quiet, progress: progress, log: log))
    }

    /// The layers to drop from `options.method`, reading or running the analysis it needs.
    public static func choose(_ source: ModelSource, options: CutOptions, quiet: Bool = false, progress: ProgressSink? = nil,
                              log: JobLog = .standardError) throws -> CutChoice {
        let L = try LayerCutter(model: source.directory).layerCount()
        try checkDestination(source, options)
        let analysisPath: String?, datasetPath: String?
        switch options.analysis {
        case .file(let url)?: (analysisPath, datasetPath) = (url.path, nil)
        case .fresh(let o)?: (analysisPath, datasetPath) = (nil, o.dataset.path)
        case nil: (analysisPath, datasetPath) = (nil, nil)
        }
        func chosen(_ method: String, _ option: String, _ reason: String) -> CutSelection {
            CutSelection(method: method, option: option, analysis: analysisPath, dataset: datasetPath, reason: reason)
        }
        let choice = try choose(options.method, source, options: options, layerCount: L, chosen: chosen, quiet: quiet, progress: progress, log: log)
        try choice.drop.validate(layerCount: L)   // a layer outside the model is named before the damage it would do
        if !options.force, let why = CutDamageGuard.refusal(dropping: choice.drop.layers, layerCount: L) {
            throw PruneError(choice.selection.option, "\(why); add --force to cut anyway")
        }
        return choice
    }

    private static func choose(_ method: CutMethod, _ source: ModelSource, options: CutOptions, layerCount L: Int,
                               chosen: (String, String, String) -> CutSelection, quiet: Bool, progress: ProgressSink?,
                               log: JobLog) throws -> CutChoice {
        switch method {
        case .layers(let layers):
            return CutChoice(drop: try LayerSelection(parsing: layers),
                             selection: CutSelection(method: "layers", option: "--layers \(layers)", reason: "given explicitly"))
        case .block(let block):
            let result = try loadOrRunAnalysis(source, options.analysis, layerCount: L, quiet: quiet, progress: progress, log: log)
            guard block < L else { throw PruneError("--block", "a block of \(block) layers would leave none (the model has \(L))") }
            let ranked = BlockRanking.ranked(result.angularDistance.lastToken, size: block)
            guard let best = ranked.first else { throw PruneError("--block", "the analysis has no block of \(block) layers") }
            let reason = String(format: "best block of %d: layers %@ (d = %.4f)", block, LayerSelection(best.layers).description, best.distance)
            return CutChoice(drop: LayerSelection(best.layers),
                             selection: chosen("block", "--block \(block)",
                                               reason + ", the smallest last-token angular distance between its input and output"),
                             announcement: reason)
        case .lowestInfluence(let k):
            let result = try loadOrRunAnalysis(source, options.analysis, layerCount: L, quiet: quiet, progress: progress, log: log)
            guard k < L else { throw PruneError("--count", "removing \(k) layers would leave none (the model has \(L))") }
            let lowest = result.lowestInfluenceLayers(k)
            return CutChoice(drop: LayerSelection(lowest),
                             selection: chosen("metric", "--metric bi --count \(k)",
                                               "the \(k) layers with the lowest Block Influence: \(LayerSelection(lowest))"),
                             announcement: "lowest Block Influence: layers \(LayerSelection(lowest))")
        }
    }

    /// Writes the checkpoint without `choice.drop` (replaced as `options.replace` says); `quiet` silences
    /// ReplaceMe's fit lines, `progress` hears its calibration passes.
    public static func cut(_ source: ModelSource, choice: CutChoice, options: CutOptions, quiet: Bool = false,
                           progress: ProgressSink? = nil, log: JobLog = .standardError) throws -> CutReport {
        try checkDestination(source, options)
        let repair: CutRepair?
        switch options.replace {
        case nil: repair = nil
        case .laco?: repair = .layerMerge
        case .replaceme(let o)?:
            let maps = try replaceMe(source, dropping: choice.drop.layers, calibration: o, quiet: quiet, progress: progress, log: log)
            repair = .linear(Dictionary(uniqueKeysWithValues: maps.map { ($0.layerBefore, $0.transform) }))
        }
        return try LayerCutter(model: source.directory).cut(dropping: choice.drop, to: options.output, dtype: options.dtype,
                                                            force: options.force, selection: choice.selection,
                                                            command: options.command, tool: options.tool, sourceName: source.path,
                                                            repair: repair)
    }

    /// Refuses an output the cut may not write (an existing one without --force, the model's own directory) before
    /// an analysis or ReplaceMe's calibration runs for minutes; LayerCutter checks it again when it writes.
    static func checkDestination(_ source: ModelSource, _ options: CutOptions) throws {
        _ = try CheckpointDestination(output: options.output, model: source.directory, force: options.force)
    }

    /// ReplaceMe's maps for the runs of `dropping`, estimated on `calibration`'s samples; each fit is noted
    /// beside plain deletion's.
    static func replaceMe(_ source: ModelSource, dropping: [Int], calibration o: AnalyzeOptions, quiet: Bool,
                          progress: ProgressSink?, log: JobLog) throws -> [LinearReplacement] {
        let data = try Dataset(url: o.dataset)
        let model = try source.loadModel(log: log)
        let samples = try AnalyzeJob.calibrationSequences(model: model, source: source, dataset: data, tokenizer: source.optionalTokenizer(),
                                                          options: o, log: log).sequences
        let maps = try LinearReplacement.estimate(model: model, samples: samples, removing: dropping, batchSize: o.batchSize,
                                                  progress: progress)
        if !quiet {
            for m in maps {
                log.note(String(format: "replaceme: layers %@ → a linear map in layer %d's down_proj, relative error %.4f (deleting them: %.4f) on %d tokens\n",
                                LayerSelection(m.removed).description, m.layerBefore, m.relativeError,
                                m.deletionRelativeError, m.tokens))
            }
        }
        return maps
    }

    /// The analysis behind --block / --metric: read (and checked against the model's layer count) or run.
    static func loadOrRunAnalysis(_ source: ModelSource, _ from: CutAnalysisSource?, layerCount L: Int, quiet: Bool,
                                  progress: ProgressSink?, log: JobLog) throws -> LayerAnalysis {
        switch from {
        case .file(let url)?:
            let result = try AnalysisFiles.readJSON(url)
            guard result.layers == L else {
                throw PruneError(file: url, "analyses a model of \(result.layers) layers, but \(source.path) has \(L)")
            }
            return result
        case .fresh(var options)?:
            let data = try Dataset(url: options.dataset)
            let model = try source.loadModel(log: log)
            (options.blockSizes, options.removalScan, options.earlyExit) = (nil, false, false)
            let analysis = try AnalyzeJob.analyze(model: model, source: source, dataset: data, tokenizer: source.optionalTokenizer(),
                                                  options: options, quiet: quiet, progress: progress, log: log)
            do { try AnalyzeJob.requireFinite(analysis, model: source.directory) } catch let e as AnalyzeJob.NonFiniteAnalysis {
                throw e.error
            }
            return analysis
        case nil:
            throw PruneError("--analysis", "--block and --metric need either --analysis FILE.json or --dataset FILE")
        }
    }
}
