// `prune run` of a recipe with a `layerskip` section: the proposal's study in one run directory.
//   evaluate-base     → the base model's held-out loss (the windows `prune eval` uses)
//   layerskip-M       → OUT/layerskip/M/ (Finetuner: continual training with the early-exit loss and layer dropout
//                       on heal's budget; M = full, every layer and lm_head, or lora), merged/ a plain checkpoint
//   baseline          → OUT/baseline/ (the first method's budget with plain cross-entropy: the last-layer bar)
//   frequencies       → the train data's token frequencies (the reduced draft vocabulary)
//   study-X           → per model X (base, each training, baseline): held-out loss; each exit's loss and top-1
//                       agreement on the valid data (analyze --early-exit); plain greedy and exit:auto on the first
//                       `prompts` valid records (exit:auto calibrated on data.calibration, never on valid), with
//                       tokens/s, the choice made and whether the output equals plain greedy
//   export            → OUT/final/ (the first method's merged model) + speculation.json (exit agreement on the
//                       calibration data, the train data's token frequencies, the draft vocabulary size)
//   report            → OUT/summary.json, report.md, report.html
// Each stage is skipped on a rerun when its inputs and settings hash to the key it finished with (StageCache).
import Analysis
import Data
import Finetuning
import Foundation
import Generation
import Jobs
import Llama
import Support
import Tensor
import Tokenizers

/// One model of the study, measured.
public struct LayerSkipModelResult: Codable, Equatable, Sendable {
    /// "base", "layerskip full", "layerskip lora", "baseline (cross-entropy)".
    public var label: String
    /// OUT-relative (or the model's path for the base).
    public var directory: String
    public var loss: Double
    public var perplexity: Double
    /// Index l−1: exit l's held-out loss and top-1 agreement with the model's last layer.
    public var exitLoss: [Double]
    public var exitAgreement: [Double]
    /// Summed over the prompts: tokens and decode seconds, plain and with exit:auto.
    public var plainTokensPerSecond: Double
    public var autoTokensPerSecond: Double
    /// What exit:auto chose for each prompt ("exit:8 K=4", or "plain").
    public var autoChoices: [String]
    /// Drafted tokens accepted over drafted, over all prompts.
    public var acceptance: Double
    /// exit:auto's output equals plain greedy's on every prompt.
    public var identical: Bool
    /// Training wall seconds (nil for the base).
    public var trainingSeconds: Double?

    public var speedup: Double { plainTokensPerSecond > 0 ? autoTokensPerSecond / plainTokensPerSecond : 0 }
}

/// Everything the LayerSkip report is drawn from (OUT/summary.json).
public struct LayerSkipSummary: Codable, Equatable, Sendable {
    public var recipe: Recipe
    public var recipeFile: String
    public var layers: Int
    public var prompts: [String]
    public var models: [LayerSkipModelResult]
    public var finalModel: String?
    public var stagesRun: [String]
    public var stagesSkipped: [String]
}

/// Runs a layerskip recipe.
public final class LayerSkipStudy {
    public let recipe: Recipe
    public let settings: Recipe.LayerSkipSettings
    public let recipeFile: String
    public let log: JobLog
    /// Where the jobs' progress goes (nil: nowhere, as in tests).
    public var progress: ProgressSink?
    let parallelism: Parallelism

    public init(recipe: Recipe, recipeFile: String, log: JobLog = .standardError) throws {
        guard let settings = recipe.layerskip else { throw PruneError(recipeFile, "has no layerskip section") }
        self.recipe = recipe
        self.settings = settings
        self.recipeFile = recipeFile
        self.log = log
        parallelism = recipe.threads.map { Parallelism(threads: $0) } ?? .allCores
    }

    func url(_ path: String) -> URL { URL(fileURLWithPath: path) }
    public var output: URL { url(recipe.output) }

    /// The Finetuner's options for `method` (nil: the cross-entropy baseline on the first method's budget).
    func trainingOptions(_ method: Recipe.LayerSkipSettings.Method?, layers L: Int, output: URL) throws -> FinetuneOptions {
        let h = recipe.heal
        guard let train = recipe.data.train else { throw PruneError("data.train", "is required by layerskip") }
        var o = recipe.trainingBudget(model: url(recipe.model), train: url(train), output: output)
        switch method ?? settings.methods[0] {
        case .full:
            o.trainLayers = Array(0..<L)
            o.trainLMHead = true
            o.lr = h.lr
        case .lora:
            o.lora = true
            o.rank = h.rank
            o.alpha = h.alpha
            o.lr = settings.loraLR
        }
        if method != nil {
            o.earlyExitLoss = true
            o.earlyExitScale = settings.earlyExitScale
            o.earlyExitCurriculum = settings.curriculum
            o.layerDropout = settings.layerDropout
        }
        try o.validate(layers: L)
        return o
    }

    /// The speed prompts: the first `prompts` records of data.valid, each cut to its first `prompt_tokens` tokens.
    func speedPrompts(tokenizer: Tokenizer) throws -> [[Int32]] {
        let valid = try Dataset(url: url(recipe.data.valid))
        return try CalibrationSamples.select(from: valid, tokenizer: tokenizer, count: settings.prompts, context: settings.promptTokens)
    }

    /// Runs every stage (skipping those already done) and writes the report.
    @discardableResult
    public func run() throws -> LayerSkipSummary {
        let r = recipe, s = settings, out = output
        let modelURL = url(r.model)
        if out.standardizedFileURL.path == modelURL.standardizedFileURL.path {
            throw PruneError("output", "is the model directory \(r.model); give another run directory")
        }
        let base = ModelSource(path: modelURL.path, parallelism: parallelism)
        let checkpoint = try base.validated()
        let L = checkpoint.config.numHiddenLayers
        // Every option checked before an hour of training.
        for m in s.methods { _ = try trainingOptions(m, layers: L, output: out) }
        let tokenizer = try base.requiredTokenizer(for: "the layerskip study's prompts")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try AtomicFile.write(Data(try r.resolvedYAML().utf8), to: out.appendingPathComponent("recipe.yaml"))
        let cache = StageCache(run: out)
        let stageCount = s.methods.count + (s.baseline ? 1 : 0) + 1 + (s.methods.count + (s.baseline ? 1 : 0) + 1) + (r.export.enabled ? 1 : 0) + 1
        var stageIndex = 0
        func announce(_ what: String) {
            stageIndex += 1
            log.note("[\(stageIndex)/\(stageCount)] \(what)\n")
        }
        let modelKey = try ContentHash.checkpoint(modelURL)
        let trainURL = url(r.data.train ?? r.data.valid)
        let trainKey = try ContentHash.file(trainURL), validKey = try ContentHash.file(url(r.data.valid))
        let calibrationKey = try ContentHash.file(url(r.data.calibration))

        // Train.
        struct Trained: Codable { var seconds: Double }
        var models: [(name: String, label: String, dir: URL, shown: String, key: String, seconds: Double?)] = [("base", "base", modelURL, r.model, modelKey, nil)]
        let trainings: [Recipe.LayerSkipSettings.Method?] = s.methods.map { $0 } + (s.baseline ? [nil] : [])
        for method in trainings {
            let name = method.map { "layerskip/\($0.rawValue)" } ?? "baseline"
            let label = method.map { "layerskip \($0.rawValue)" } ?? "baseline (cross-entropy, \(s.methods[0].rawValue))"
            let dir = out.appendingPathComponent(name)
            let options = try trainingOptions(method, layers: L, output: dir)
            announce("train \(label): \(r.heal.steps) steps on \(r.data.train ?? "")")
            var settingsOnly = options   // paths are not hashed, the files' bytes are
            (settingsOnly.model, settingsOnly.dataset, settingsOnly.valid, settingsOnly.output) = ("", "", nil, "")
            let key = ContentHash.of(["layerskip-train", modelKey, trainKey, validKey, ContentHash.settings(settingsOnly)])
            let done = try cache.stage(name.replacingOccurrences(of: "/", with: "-"), key: key,
                                       outputs: [dir.appendingPathComponent("merged/config.json")], log: log) { () -> Trained in
                if FileManager.default.fileExists(atPath: dir.path) { try FileManager.default.removeItem(at: dir) }
                let log = self.log
                let result = try Finetuner(options: options, parallelism: parallelism, progress: progress, log: { log.note($0 + "\n") }).run()
                guard result.ending == .finished else { throw PruneError(name, "training was interrupted; rerun to start it again") }
                return Trained(seconds: result.seconds)
            }
            models.append((name.replacingOccurrences(of: "/", with: "-"), label, dir.appendingPathComponent("merged"), name + "/merged", key, done.seconds))
        }

        // The draft vocabulary's frequencies, once.
        announce("count the tokens of \(trainURL.path)")
        let frequencies = try cache.stage("frequencies", key: ContentHash.of(["frequencies", trainKey, modelKey]), log: log) {
            try SpeculationProfile.countTokens(of: try Dataset(url: trainURL), tokenizer: tokenizer, vocabularySize: checkpoint.config.vocabSize)
        }
        let prompts = try speedPrompts(tokenizer: tokenizer)

        // Measure each model.
        var results: [LayerSkipModelResult] = []
        var profiles: [String: SpeculationProfile] = [:]
        for m in models {
            announce("measure the \(m.label) model: held-out loss, each exit, plain and exit:auto decoding of \(prompts.count) prompts")
            struct Measured: Codable { var result: LayerSkipModelResult; var profile: SpeculationProfile }
            let key = ContentHash.of(["layerskip-study", m.key, validKey, calibrationKey, trainKey, ContentHash.settings(r.analyze),
                                      ContentHash.settings(r.evaluate), ContentHash.settings(s)])
            let measured = try cache.stage("study-" + m.name, key: key, log: log) { () -> Measured in
                let (result, profile) = try measure(m.label, directory: m.dir, shown: m.shown, frequencies: frequencies, prompts: prompts,
                                                    trainingSeconds: m.seconds)
                return Measured(result: result, profile: profile)
            }
            results.append(measured.result)
            profiles[m.label] = measured.profile
            let x = measured.result
            log.note(String(format: "  %@: perplexity %.2f; plain %.1f tokens/s, exit:auto %.1f tokens/s (%.2f×, %@), acceptance %.2f; output %@\n",
                            x.label, x.perplexity, x.plainTokensPerSecond, x.autoTokensPerSecond, x.speedup,
                            Self.choiceSummary(x.autoChoices), x.acceptance, x.identical ? "identical to plain greedy" : "DIFFERS from plain greedy"))
        }

        // Export the first method's model with its speculation profile.
        var finalModel: String?
        if r.export.enabled, models.count > 1 {
            let first = models[1]
            announce("export the \(first.label) model to \(r.output)/final")
            let finalDir = out.appendingPathComponent("final")
            let profile = profiles[first.label] ?? SpeculationProfile()
            _ = try cache.stage("export", key: ContentHash.of(["layerskip-export", first.key, ContentHash.settings(profile)]),
                                outputs: [finalDir.appendingPathComponent("config.json")], log: log) { () -> Done in
                try AtomicDirectory.write(finalDir, replacing: true) { tmp in
                    try AtomicDirectory.copyContents(of: first.dir, into: tmp, except: [SpeculationProfile.fileName])
                    try profile.write(into: tmp)
                }
                return Done()
            }
            finalModel = "final"
        }

        announce("report")
        let summary = LayerSkipSummary(recipe: r, recipeFile: recipeFile, layers: L, prompts: prompts.map { tokenizer.decode($0) }, models: results,
                                       finalModel: finalModel, stagesRun: cache.ran, stagesSkipped: cache.skipped)
        try LayerSkipReport.write(summary, to: out)
        log.note("report: \(out.appendingPathComponent("report.md").path) and report.html\n")
        return summary
    }

    /// One model's measurements and the speculation profile it is decoded with (exit agreement on the calibration
    /// data, the train data's frequencies).
    func measure(_ label: String, directory: URL, shown: String, frequencies: SpeculationProfile.TokenFrequencies,
                 prompts: [[Int32]], trainingSeconds: Double?) throws -> (result: LayerSkipModelResult, profile: SpeculationProfile) {
        let r = recipe, s = settings
        let source = ModelSource(path: directory.path, parallelism: parallelism)
        let model = try source.loadModel(log: log)
        let tokenizer = try source.requiredTokenizer(for: "the layerskip study")
        let (held, _) = try EvaluationJob.evaluate(model, source: source, options: EvaluationOptions(
            dataset: url(r.data.valid), context: r.evaluate.context, stride: r.evaluate.stride, batchSize: r.evaluate.batchSize),
            progress: progress, log: log)
        let exits = try AnalyzeJob.analyze(model: model, source: source, dataset: try Dataset(url: url(r.data.valid)), tokenizer: tokenizer,
                                           options: AnalyzeOptions(dataset: url(r.data.valid), samples: r.analyze.samples, context: r.analyze.context,
                                                                   blockSizes: "1", earlyExit: true, batchSize: r.analyze.batchSize),
                                           quiet: true, log: log)
        let calibration = try CalibrationSamples.select(from: try Dataset(url: url(r.data.calibration)), tokenizer: tokenizer,
                                                        count: SpeculationRequest.calibrationSamples,
                                                        context: min(SpeculationRequest.calibrationContext, model.config.maxPositionEmbeddings))
        let profile = SpeculationProfile(
            exitAgreement: SpeculationProfile.measureExits(model: model, samples: calibration, source: r.data.calibration),
            tokenFrequencies: frequencies, draftVocabulary: s.draftVocabulary > 0 ? min(s.draftVocabulary, model.config.vocabSize - 1) : nil)
        var sampling = SamplingOptions()
        sampling.maxTokens = min(s.maxTokens, model.config.maxPositionEmbeddings - s.promptTokens)
        sampling.stopTokens = GenerationJob.stopTokens(model: model, tokenizer: tokenizer)
        let decoded = try PromptDecoding.measure(model: model, tokenizer: tokenizer, source: source, prompts: prompts, sampling: sampling,
                                                 request: SpeculationRequest(draft: .automaticExit, profile: profile), log: .silent)
        let result = LayerSkipModelResult(
            label: label, directory: shown, loss: held.loss, perplexity: held.perplexity,
            exitLoss: exits.earlyExitLoss ?? [], exitAgreement: exits.earlyExitTop1Agreement ?? [],
            plainTokensPerSecond: decoded.plainTokensPerSecond, autoTokensPerSecond: decoded.autoTokensPerSecond,
            autoChoices: decoded.choices, acceptance: decoded.drafted > 0 ? Double(decoded.accepted) / Double(decoded.drafted) : 0,
            identical: decoded.identical == prompts.count, trainingSeconds: trainingSeconds)
        return (result, profile)
    }

    /// "exit:8 K=4 ×6, plain ×2".
    public static func choiceSummary(_ choices: [String]) -> String {
        var counts: [(String, Int)] = []
        for c in choices {
            if let i = counts.firstIndex(where: { $0.0 == c }) { counts[i].1 += 1 } else { counts.append((c, 1)) }
        }
        return counts.map { "\($0.0) ×\($0.1)" }.joined(separator: ", ")
    }
}
