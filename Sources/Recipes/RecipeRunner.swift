// `prune run RECIPE`: a whole pruning study as stages in one run directory.
//   analyze   → OUT/analysis/ (analysis.json, .h5, .svg, analysis-layers.svg)
//   choose    → OUT/selection.json (each strategy's layers; the removal loss of every block for `loss`)
//   cut-S     → OUT/cuts/S/ (a checkpoint transformers loads, with its model card and prune_cut.json)
//   evaluate  → held-out loss and perplexity of the full model and each cut (EvaluationJob's windows), KL from the
//               original and top-1 agreement (ReferenceComparison)
//   heal-S    → OUT/heal/S/ (Finetuner: metrics.jsonl, loss.svg, adapter/, merged/), then evaluate-S-healed
//   generate  → the report's prompts continued by the full, cut and healed models, with a drift check
//   export    → OUT/final/ (the first strategy's model, healed when healing ran)
//   report    → OUT/summary.json, report.md, report.html
// Each stage is skipped on a rerun when its inputs and settings hash to the key it finished with (StageCache).
import Analysis
import Checkpoint
import Data
import Finetuning
import Foundation
import Jobs
import Llama
import Support
import Surgery
import Tensor

/// Held-out measurements of one model.
public struct ModelEvaluation: Codable, Equatable, Sendable {
    public var loss: Double
    public var perplexity: Double
    public var tokens: Int
    /// KL(original ‖ model), nats per position; nil for the original or without `evaluate.reference`.
    public var meanKL: Double?
    public var top1Agreement: Double?
    public var layers: Int
    public var parameters: Int
    /// Bytes of the checkpoint's weight files.
    public var bytesOnDisk: Int
    /// Accuracy on `evaluate.task`, nil without one.
    public var task: TaskAccuracy?
}

/// A model's acc and acc_norm on a multiple-choice task, with their standard errors (nil for one question).
public struct TaskAccuracy: Codable, Equatable, Sendable {
    public var acc: Double
    public var accStderr: Double?
    public var accNorm: Double
    public var accNormStderr: Double?
    public var n: Int

    init(_ s: MultipleChoiceScores) {
        (acc, accStderr, accNorm, accNormStderr, n) = (s.acc, s.accStderr, s.accNorm, s.accNormStderr, s.n)
    }
}

/// One strategy's cut and what became of it.
public struct StrategyResult: Codable, Equatable, Sendable {
    public var choice: LayerChoice
    /// OUT-relative paths.
    public var cutDirectory: String
    public var cut: ModelEvaluation
    public var healDirectory: String?
    public var healed: ModelEvaluation?
}

/// One prompt continued by one model.
public struct Continuation: Codable, Equatable, Sendable {
    /// "full", "angular cut", "angular healed", …
    public var model: String
    public var text: String
    /// Tokens generated: fewer than report.max_tokens when the model stopped itself (nil in runs that did not record it).
    public var tokens: Int?
    public var tokensPerSecond: Double
    /// Against the full model's continuation; nil for the full model.
    public var drift: TextDrift?
}

/// Everything a report is drawn from (OUT/summary.json).
public struct RunSummary: Codable, Equatable, Sendable {
    public var recipe: Recipe
    public var recipeFile: String
    public var layers: Int
    /// n of the cuts (nil when only explicit layers were given).
    public var count: Int?
    public var full: ModelEvaluation
    public var strategies: [StrategyResult]
    /// Loss with each contiguous block of n removed, by start (the `loss` strategy's table).
    public var blockRemovalLoss: [Double]?
    public var calibrationFullLoss: Double?
    public var prompts: [String]
    /// prompts × models
    public var continuations: [[Continuation]]
    /// OUT-relative path of the exported model.
    public var finalModel: String?
    public var stagesRun: [String]
    public var stagesSkipped: [String]
}

/// Runs a recipe.
public final class RecipeRunner {
    public let recipe: Recipe
    /// The recipe file as named (the report says which recipe made it).
    public let recipeFile: String
    public let log: JobLog
    /// Where the jobs' progress goes (nil: nowhere, as in tests).
    public var progress: ProgressSink?
    let parallelism: Parallelism

    public init(recipe: Recipe, recipeFile: String, log: JobLog = .standardError) {
        self.recipe = recipe
        self.recipeFile = recipeFile
        self.log = log
        parallelism = recipe.threads.map { Parallelism(threads: $0) } ?? .allCores
    }

    /// A path of the recipe (absolute: Recipe.parse resolved it).
    func url(_ path: String) -> URL { URL(fileURLWithPath: path) }

    public var output: URL { url(recipe.output) }

    /// Runs every stage (skipping those already done) and writes the report; returns the summary.
    @discardableResult
    public func run() throws -> RunSummary {
        let r = recipe
        if r.layerskip != nil { throw PruneError(recipeFile, "is a layerskip study: LayerSkipStudy runs it") }
        let out = output
        let modelURL = url(r.model)
        if out.standardizedFileURL.path == modelURL.standardizedFileURL.path {
            throw PruneError("output", "is the model directory \(r.model); give another run directory")
        }
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try AtomicFile.write(Data(try r.resolvedYAML().utf8), to: out.appendingPathComponent("recipe.yaml"))
        let cache = StageCache(run: out)
        let compute = r.compute ?? .f32
        try compute.checkAvailable()
        let source = ModelSource(path: modelURL.path, parallelism: parallelism, compute: compute)
        let (L, n) = try preflight()
        // Every announce() below: analyze, choose, evaluate-full, generate and report; export when enabled; cut and
        // evaluate per strategy, heal and evaluate-healed per healed one (all, or the first).
        let healedCount = r.heal.enabled ? (r.heal.all ? r.cut.strategies.count : 1) : 0
        let stageCount = 5 + (r.export.enabled ? 1 : 0) + 2 * r.cut.strategies.count + 2 * healedCount
        var stageIndex = 0
        func announce(_ what: String) {
            stageIndex += 1
            log.note("[\(stageIndex)/\(stageCount)] \(what)\n")
        }

        // Inputs, hashed once.
        // bf16 compute changes every measured figure: it joins the model's key, so every stage below reruns (f32 keeps the key).
        let modelKey = try ContentHash.checkpoint(modelURL) + (compute == .f32 ? "" : "+compute-" + compute.rawValue)
        let calibrationKey = try ContentHash.file(url(r.data.calibration))
        let validKey = try ContentHash.file(url(r.data.valid))
        let trainKey = try r.data.train.map { try ContentHash.file(url($0)) }
        // The teacher's weights, not its path, decide a distilled heal (the original's key is the model's).
        let teacherKey = try r.heal.teacher.map { $0 == Recipe.HealSettings.originalTeacher ? modelKey : try ContentHash.checkpoint(url($0)) } ?? "-"

        // Analyze.
        announce("analyze \(r.model) on \(r.data.calibration)")
        let analysisDir = out.appendingPathComponent("analysis")
        let analyzeKey = ContentHash.of(["analyze", modelKey, calibrationKey, ContentHash.settings(r.analyze)])
        _ = try cache.stage("analyze", key: analyzeKey, outputs: [analysisDir.appendingPathComponent(AnalysisFiles.jsonName)], log: log) { () -> Done in
            let options = AnalyzeOptions(dataset: url(r.data.calibration), samples: r.analyze.samples, context: r.analyze.context,
                                         earlyExit: r.analyze.earlyExit, batchSize: r.analyze.batchSize)
            _ = try AnalyzeJob.run(source, options: options, output: analysisDir, force: true, quiet: progress == nil, progress: progress, log: log)
            return Done()
        }
        let analysis = try AnalysisFiles.readJSON(analysisDir.appendingPathComponent(AnalysisFiles.jsonName))

        // Choose.
        announce("choose: \(r.cut.strategies.map(\.rawValue).joined(separator: ", "))" + (n.map { " for a cut of \(Counted.noun($0, "layer"))" } ?? ""))
        struct Selection: Codable { var choices: [LayerChoice]; var scan: BlockRemovalScan? }
        let chooseKey = ContentHash.of(["choose", analyzeKey, ContentHash.settings(r.cut), n.map(String.init) ?? "-"])
        let selection = try cache.stage("choose", key: chooseKey, log: log) { () -> Selection in
            var scan: BlockRemovalScan?
            if r.cut.strategies.contains(.loss), let n {
                let model = try source.loadModel(log: log)
                let data = try Dataset(url: url(r.data.calibration))
                let samples = try CalibrationSamples.select(from: data, tokenizer: source.optionalTokenizer(), count: r.analyze.samples,
                                                            context: source.clippedToPositions(r.analyze.context, of: model, asked: "analyze.context", log: log))
                let reporter = progress.map { ProgressReporter("removal loss of each block of \(n)", total: (L - n + 1) * CalibrationBatch.batches(samples, batchSize: r.analyze.batchSize).count,
                                                               unit: "pass", sink: $0) }
                scan = BlockRemovalScan.measure(model: model, samples: samples, size: n, batchSize: r.analyze.batchSize) { done, _ in
                    reporter?.update(done: done, units: 1)
                }

            }
            let choices = try r.cut.strategies.map {
                try LayerSelector.choose($0, count: n, layerCount: L, analysis: analysis, lossScan: scan, explicit: r.cut.layers,
                                         allowFirstLayer: r.cut.allowFirstLayer, force: r.cut.force)
            }
            try AtomicFile.write(try JSONEncoder.sorted.encode(Selection(choices: choices, scan: scan)), to: out.appendingPathComponent("selection.json"))
            return Selection(choices: choices, scan: scan)
        }
        for c in selection.choices { log.note("  \(c.strategy.rawValue): drop \(c.rangesText) — \(c.reason)\n") }

        // Evaluate the full model once.
        let evalOptions = EvaluationOptions(dataset: url(r.data.valid), context: r.evaluate.context, stride: r.evaluate.stride,
                                            batchSize: r.evaluate.batchSize)
        let task = try r.evaluate.task.map { try MultipleChoiceTask(url: url($0)) }
        var referenceModel: LlamaModel?
        func reference() throws -> LlamaModel? {
            guard r.evaluate.reference else { return nil }
            if referenceModel == nil { referenceModel = try source.loadModel(log: log) }
            return referenceModel
        }
        func evaluate(_ dir: URL, compare: Bool) throws -> ModelEvaluation {
            let s = ModelSource(path: dir.path, parallelism: parallelism, compute: compute)
            let model = try s.loadModel(log: log)
            let (result, comparison) = try EvaluationJob.evaluate(model, source: s, options: evalOptions, reference: compare ? reference() : nil,
                                                                  progress: progress, log: log)
            let scores = try task.map { TaskAccuracy(try TaskScoringJob.score($0, model: model, source: s,
                                                                              tokenizer: try s.requiredTokenizer(for: "evaluate.task"), progress: progress)) }
            return ModelEvaluation(loss: result.loss, perplexity: result.perplexity, tokens: result.tokens, meanKL: comparison?.meanKL,
                                   top1Agreement: comparison?.top1Agreement, layers: model.layers.count, parameters: model.parameterCount,
                                   bytesOnDisk: Self.weightBytes(dir), task: scores)
        }
        let evalSettings = ContentHash.settings(r.evaluate) + (try r.evaluate.task.map { try ContentHash.file(url($0)) } ?? "")
        announce("evaluate the full model on \(r.data.valid)")
        let full = try cache.stage("evaluate-full", key: ContentHash.of(["evaluate", modelKey, validKey, evalSettings]), log: log) {
            try evaluate(modelURL, compare: false)
        }
        log.note(String(format: "  full model: loss %.4f  perplexity %.2f\n", full.loss, full.perplexity))

        // Cut, evaluate and heal each strategy.
        var results: [StrategyResult] = []
        var modelKeys: [String: String] = ["full": modelKey]
        for (i, choice) in selection.choices.enumerated() {
            let name = choice.strategy.rawValue
            if let same = results.first(where: { $0.choice.dropped == choice.dropped }) {
                // Another strategy chose the same layers: its cut, evaluation and healing are this one's.
                let other = same.choice.strategy.rawValue
                announce("cut \(name): drop \(choice.rangesText), the layers \(other) chose: its results are reused")
                stageIndex += r.heal.enabled && (r.heal.all || i == 0) ? 3 : 1
                modelKeys["\(name) cut"] = modelKeys["\(other) cut"]
                modelKeys["\(name) healed"] = modelKeys["\(other) healed"]
                var reused = same
                reused.choice = choice
                if !(r.heal.enabled && (r.heal.all || i == 0)) { (reused.healDirectory, reused.healed) = (nil, nil) }
                results.append(reused)
                continue
            }
            announce("cut \(name): drop \(choice.rangesText)")
            let cutDir = out.appendingPathComponent("cuts/\(name)")
            let repairKey = r.cut.replace.map { [$0.rawValue] + ($0 == .replaceme ? [calibrationKey, ContentHash.settings(r.analyze)] : []) } ?? []
            let cutKey = ContentHash.of(["cut", modelKey, choice.dropped.map(String.init).joined(separator: ","), r.cut.dtype ?? "-"] + repairKey)
            _ = try cache.stage("cut-\(name)", key: cutKey, outputs: [cutDir.appendingPathComponent("config.json")], log: log) { () -> Done in
                let cutChoice = CutChoice(drop: LayerSelection(choice.dropped),
                                          selection: CutSelection(method: name, option: "prune run \(recipeFile) (cut.strategies: \(name))", reason: choice.reason))
                _ = try CutJob.cut(source, choice: cutChoice, options: CutOptions(
                    method: .layers(choice.rangesText), output: cutDir, force: true, dtype: try r.cut.dtype.map { try SafetensorsDType.output($0, "cut.dtype") },
                    command: ["prune", "run", recipeFile], tool: "prune \(SystemReport.version) run", replace: try cutReplacement()),
                    quiet: false, progress: progress, log: log)
                return Done()
            }
            modelKeys["\(name) cut"] = cutKey
            announce("evaluate the \(name) cut")
            let cutEval = try cache.stage("evaluate-\(name)", key: ContentHash.of(["evaluate", cutKey, validKey, evalSettings, modelKey]), log: log) {
                try evaluate(cutDir, compare: true)
            }
            log.note(String(format: "  %@ cut: loss %.4f  perplexity %.2f", name, cutEval.loss, cutEval.perplexity)
                     + (cutEval.meanKL.map { kl in String(format: "  KL %.4f  top-1 %.3f", kl, cutEval.top1Agreement ?? Double.nan) } ?? "") + "\n")
            var result = StrategyResult(choice: choice, cutDirectory: "cuts/\(name)", cut: cutEval)
            if r.heal.enabled && (r.heal.all || i == 0), let train = r.data.train, let trainKey {
                announce("heal the \(name) cut (\(r.heal.method.rawValue), \(r.heal.steps) steps)")
                let healDir = out.appendingPathComponent("heal/\(name)")
                let healKey = ContentHash.of(["heal", cutKey, trainKey, validKey, ContentHash.settings(r.heal), r.export.dtype ?? "-", teacherKey])
                _ = try cache.stage("heal-\(name)", key: healKey, outputs: [healDir.appendingPathComponent("merged/config.json")], log: log) { () -> Done in
                    if FileManager.default.fileExists(atPath: healDir.path) { try FileManager.default.removeItem(at: healDir) }
                    let options = try finetuneOptions(model: cutDir, layers: cutEval.layers, train: url(train), output: healDir)
                    let log = self.log
                    _ = try Finetuner(options: options, parallelism: parallelism, progress: progress, log: { log.note($0 + "\n") }).run()
                    return Done()
                }
                modelKeys["\(name) healed"] = healKey
                announce("evaluate the healed \(name) cut")
                let healed = try cache.stage("evaluate-\(name)-healed", key: ContentHash.of(["evaluate", healKey, validKey, evalSettings, modelKey]), log: log) {
                    try evaluate(healDir.appendingPathComponent("merged"), compare: true)
                }
                log.note(String(format: "  %@ healed: loss %.4f  perplexity %.2f\n", name, healed.loss, healed.perplexity))
                result.healDirectory = "heal/\(name)"
                result.healed = healed
            }
            results.append(result)
        }
        referenceModel = nil

        // Generate.
        announce("continue \(r.report.prompts.count) prompt(s) with each model")
        var models: [(label: String, dir: URL, key: String)] = [("full", modelURL, modelKey)]
        for s in results {
            let name = s.choice.strategy.rawValue
            models.append(("\(name) cut", out.appendingPathComponent(s.cutDirectory), modelKeys["\(name) cut"]!))
            if let h = s.healDirectory { models.append(("\(name) healed", out.appendingPathComponent(h).appendingPathComponent("merged"), modelKeys["\(name) healed"]!)) }
        }
        let generateKey = ContentHash.of(["generate", ContentHash.settings(r.report), "drift \(TextDrift.version)"] + models.map { "\($0.label)=\($0.key)" })
        let continuations = try cache.stage("generate", key: generateKey, log: log) { () -> [[Continuation]] in
            guard (try? ModelSource(path: modelURL.path).optionalTokenizer()) != nil else { return [] }
            return try r.report.prompts.map { prompt in
                var row: [Continuation] = []
                var byDirectory: [String: Continuation] = [:]   // strategies that chose the same layers share a model
                for m in models {
                    if let done = byDirectory[m.dir.path] {
                        row.append(Continuation(model: m.label, text: done.text, tokens: done.tokens, tokensPerSecond: done.tokensPerSecond, drift: done.drift))
                        continue
                    }
                    let job = try GenerationJob(ModelSource(path: m.dir.path, parallelism: parallelism),
                                                options: GenerationOptions(prompt: prompt, maxTokens: r.report.maxTokens), log: .silent)
                    let started = Date()
                    let result = try job.run(.plain, comparePlain: false) { _ in }
                    let seconds = Date().timeIntervalSince(started)
                    let text = result.text
                    row.append(Continuation(model: m.label, text: text, tokens: result.ids.count, tokensPerSecond: Double(result.ids.count) / max(seconds, 1e-9),
                                            drift: row.first.map { TextDrift.measure(text, original: $0.text) }))
                    byDirectory[m.dir.path] = row.last
                }
                return row
            }
        }

        // Export.
        var finalModel: String?
        if r.export.enabled, let first = results.first {
            announce("export the \(first.choice.strategy.rawValue) model to \(r.output)/final")
            let from = first.healDirectory.map { out.appendingPathComponent($0).appendingPathComponent("merged") } ?? out.appendingPathComponent(first.cutDirectory)
            let fromKey = first.healDirectory != nil ? modelKeys["\(first.choice.strategy.rawValue) healed"]! : modelKeys["\(first.choice.strategy.rawValue) cut"]!
            let finalDir = out.appendingPathComponent("final")
            _ = try cache.stage("export", key: ContentHash.of(["export", fromKey, r.export.dtype ?? "-"]),
                                outputs: [finalDir.appendingPathComponent("config.json")], log: log) { () -> Done in
                // Both ways replace an old OUT/final only once the new one is complete.
                if let dtype = r.export.dtype {
                    _ = try LayerCutter(model: from).cut(dropping: LayerSelection([]), to: finalDir, dtype: try SafetensorsDType.output(dtype, "export.dtype"), force: true,
                                                         selection: CutSelection(method: "export", option: "export.dtype \(dtype)", reason: "the study's result"),
                                                         command: ["prune", "run", recipeFile], tool: "prune \(SystemReport.version) run")
                } else {
                    try AtomicDirectory.write(finalDir, replacing: true) { try AtomicDirectory.copyContents(of: from, into: $0) }
                }
                return Done()
            }
            finalModel = "final"
        }

        // Report.
        announce("report")
        let summary = RunSummary(recipe: r, recipeFile: recipeFile, layers: L, count: n, full: full, strategies: results,
                                 blockRemovalLoss: selection.scan?.losses, calibrationFullLoss: selection.scan?.fullLoss,
                                 prompts: r.report.prompts, continuations: continuations, finalModel: finalModel,
                                 stagesRun: cache.ran, stagesSkipped: cache.skipped)
        try RunReport.write(summary, analysis: analysis, to: out)
        log.note("report: \(out.appendingPathComponent("report.md").path) and report.html\n")
        return summary
    }

    /// Everything about the recipe that can be checked against the model before any stage runs, so that a value no
    /// stage can use is one line now rather than a failure (or a trap) an hour in: the cut's size or layers, and the
    /// healing options on the model a cut leaves. Returns the model's layer count and the cut's size n.
    public func preflight() throws -> (layers: Int, count: Int?) {
        let r = recipe
        let L = try LayerCutter(model: url(r.model)).layerCount()
        let n = r.cut.count ?? r.cut.fraction.map { Int((Double(L) * $0).rounded()) }
        var kept: [Int] = []
        if let n, r.cut.strategies.contains(where: { $0 != .layers }) {
            try LayerSelector.checkCount(n, layerCount: L, allowFirstLayer: r.cut.allowFirstLayer)
            kept.append(L - n)
        }
        if r.cut.strategies.contains(.layers) {
            let choice = try LayerSelector.choose(.layers, count: nil, layerCount: L, analysis: nil, lossScan: nil, explicit: r.cut.layers,
                                                  allowFirstLayer: r.cut.allowFirstLayer, force: r.cut.force)
            kept.append(L - choice.dropped.count)
        }
        if r.heal.enabled, let train = r.data.train {
            for layers in Set(kept) {
                try finetuneOptions(model: url(r.model), layers: layers, train: url(train), output: output).validate(layers: layers)
            }
        }
        return (L, n)
    }

    /// The Finetuner's options for healing the cut in `model` (of `layers` layers).
    /// cut.replace as the cut job takes it: ReplaceMe on the calibration data with the analysis' sample settings.
    func cutReplacement() throws -> CutReplacement? {
        switch recipe.cut.replace {
        case nil: nil
        case .laco?: .laco
        case .replaceme?: .replaceme(AnalyzeOptions(dataset: url(recipe.data.calibration), samples: recipe.analyze.samples,
                                                    context: recipe.analyze.context, batchSize: recipe.analyze.batchSize))
        }
    }

    func finetuneOptions(model: URL, layers: Int, train: URL, output: URL) throws -> FinetuneOptions {
        let h = recipe.heal
        var o = recipe.trainingBudget(model: model, train: train, output: output)
        o.lora = h.method == .lora
        o.rank = h.rank
        o.alpha = h.alpha
        if h.method == .partial {
            o.trainLayers = try h.trainLayers.map { try FinetuneOptions.layers($0, of: layers, option: "heal.train_layers") } ?? []
            o.trainLMHead = h.trainLMHead
        }
        o.lr = h.lr
        (o.teacher, o.distillWeight, o.distillTemperature, o.distillHidden) = (recipe.healTeacher, h.distillWeight, h.distillTemperature, h.distillHidden)
        return o
    }

    /// Bytes of a checkpoint's .safetensors files.
    static func weightBytes(_ dir: URL) -> Int {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return files.filter { $0.hasSuffix(".safetensors") }.reduce(0) { total, f in
            total + ((try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(f).path)[.size] as? Int) ?? 0)
        }
    }
}

extension Recipe {
    /// A finetuning of `model` on `train` into `output` with `heal`'s budget (windows, batch, steps, schedule,
    /// evaluation, seed), the recipe's threads and export dtype, and data.valid held out; what trains is the caller's.
    func trainingBudget(model: URL, train: URL, output: URL) -> FinetuneOptions {
        let h = heal
        var o = FinetuneOptions(model: model.path, dataset: train.path, output: output.path)
        o.valid = URL(fileURLWithPath: data.valid).path
        o.context = h.context
        o.warmupSteps = h.warmupSteps
        o.batchSize = h.batchSize
        o.gradAccum = h.gradAccum
        o.steps = h.steps
        o.evalEvery = h.evalEvery
        o.evalTokens = h.evalTokens
        o.seed = h.seed
        o.threads = threads
        o.compute = compute ?? .f32
        o.dtype = export.dtype
        return o
    }
}
