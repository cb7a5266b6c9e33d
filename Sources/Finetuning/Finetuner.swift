// The finetuning loop: heal a (cut) model with LoRA and/or partial finetuning on a domain dataset.
// Each optimizer step is OptimizerStep.run (the micro-batches' losses and gradients, the ranks' sum, clipping,
// AdamW). Around it: held-out evaluation (before, every --eval-every steps, at the end), one JSON line per step and per
// evaluation in OUT/metrics.jsonl, checkpoints under OUT/checkpoints that a resumed run continues from exactly
// (same seed and data order: the loss curve equals an uninterrupted run's), and the export at the end.
// Under mpirun (a `communicator` of N ranks) each step's global micro-batch is N × --batch-size windows, the
// one a single process with batch N·B would take; rank r trains windows [r·B, (r+1)·B) of it, and one allreduce
// sums the flat gradients, so every rank takes the same AdamW step (see FinetuneDataParallel.swift).
import Checkpoint
import Cluster
import Data
import Foundation
import GGUF
import Jobs
import Llama
import Reports
import Support
import Tensor
import Tokenizers
import Training

/// A request to stop at the next step boundary (Ctrl-C): the loop saves a checkpoint and returns.
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var requested = false
    public init() {}
    public func request() { lock.lock(); requested = true; lock.unlock() }
    public var isRequested: Bool { lock.lock(); defer { lock.unlock() }; return requested }
}

/// How a run ended.
public struct FinetuneResult: Sendable {
    public enum Ending: String, Sendable { case finished, interrupted }
    public var ending: Ending
    /// Optimizer steps done in all (including before a resume).
    public var steps: Int
    /// Held-out loss before the first step and at the end (nil without held-out data).
    public var heldOutLossBefore: Double?
    public var heldOutLossAfter: Double?
    /// Wall time of this process's part of the run.
    public var seconds: Double
    /// Peak resident memory of the process.
    public var peakResidentBytes: Int
}

/// What a checkpoint keeps besides the tensors.
struct FinetuneState: Codable {
    var step: Int
    var position: BatchPosition
    var tokensSeen: Int
    var options: FinetuneOptions
    /// The step with the lowest held-out loss so far (during training) and that loss.
    var bestStep: Int?
    var bestLoss: Double?
    /// Evaluations since the best one (early stopping).
    var evaluationsSinceBest: Int = 0
    /// MPI ranks of the run (nil: written before runs had ranks, 1).
    var ranks: Int?
}

/// Runs one finetuning job.
public final class Finetuner {
    public let options: FinetuneOptions
    public let parallelism: Parallelism
    /// Where messages go (stderr in the CLI).
    public let log: (String) -> Void
    /// Where each step's progress goes (nil: nowhere).
    public let progress: ProgressSink?
    public let stop: StopRequest
    /// The ranks training together (one without mpirun); rank 0 alone logs and writes.
    public var communicator: Communicator = SingleProcess()
    var output: URL { URL(fileURLWithPath: options.output) }
    var checkpoints: URL { output.appendingPathComponent("checkpoints") }

    /// `options` as given, except that a teacher's α, τ and β left unset take their defaults here (what the run
    /// saves and a resume compares).
    public init(options: FinetuneOptions, parallelism: Parallelism, stop: StopRequest = StopRequest(),
                progress: ProgressSink? = nil, log: @escaping (String) -> Void) {
        var options = options
        options.resolveDistillationDefaults()
        self.options = options
        self.parallelism = parallelism
        self.stop = stop
        self.progress = progress
        self.log = log
    }

    /// The run, from scratch or (with `resuming`) from the newest checkpoint in the output directory.
    public func run(resuming: Bool = false) throws -> FinetuneResult {
        let started = Date()
        let o = options
        let comm = communicator, log = comm.isRoot ? self.log : { _ in }, progress = comm.isRoot ? self.progress : nil
        try o.compute.checkAvailable()
        let base = URL(fileURLWithPath: o.model)
        let source = ModelSource(path: o.model, parallelism: parallelism,
                                 weightsDType: WeightsDType(rawValue: o.weightsDType ?? "stored") ?? .stored, compute: o.compute)
        let checkpoint = try source.validated()
        // The merged checkpoint carries the base's config and tokenizer: what GGUF cannot carry is refused before training.
        if o.gguf { try GGUFModelExport.checkExportable(model: base) }
        // The teacher's checkpoint is read before either model loads: its weights and forward join the memory check.
        let teacher = try o.teacher.map { try ModelSource(path: $0, parallelism: parallelism).validated() }
        let memory = { (c: LlamaConfig, threads: Int) in
            var estimate = Self.memoryEstimate(o, config: c, threads: threads, teacher: teacher?.config)
            if o.compute == .bf16, let t = teacher?.config { estimate.addBF16Copies(config: t, backward: false) }
            return estimate
        }
        log("memory estimate: \(source.estimate(checkpoint, memory: memory).summary)")
        let model = try source.loadModel(checkpoint, memory: memory, job: "finetuning on \(o.batchSize) × \(o.context) tokens", log: JobLog(warning: { log("warning: " + $0) }, note: { log($0) }))
        try o.validate(layers: model.layers.count)
        if o.compute == .bf16, let dnnl = try? DNNLRuntime.load() {
            log("compute: bf16 products for the frozen projections and the lm_head on \(dnnl.summary), Float32 accumulation")
        }
        let tokenizer = try TokenizerLoader.loadIfPresent(directory: base)
        log("model: \(o.model) (\(model.layers.count) layers, \(model.parameterCount) parameters); \(parallelism)")
        let distillation = try teacher.map { try self.distillation(from: $0, student: model.config) }
        let data = try FinetuneData.prepare(o, tokenizer: tokenizer, vocabularySize: model.config.vocabSize)
        data.summary.forEach(log)
        if o.context > model.config.maxPositionEmbeddings {
            log("warning: --context \(o.context) is longer than max_position_embeddings (\(model.config.maxPositionEmbeddings))")
        }

        // What trains, and how.
        let trainable = try TrainableSet(model: model, configuration: o.trainingConfiguration)
        if o.lora {
            for layer in model.layers {
                for p in Projection.allCases {
                    layer.linear(p).lora?.dropout = Float(o.dropout)
                    layer.linear(p).lora?.dropoutFirstRow = comm.rank * o.batchSize * o.context   // this rank's rows of the global batch
                }
            }
        }
        if let initAdapter = o.initAdapter { try loadAdapter(URL(fileURLWithPath: initAdapter), into: trainable) }
        log("trainable: \(trainable.scalarCount) parameters in \(trainable.parameters.count) tensors"
            + (o.lora ? "; LoRA r=\(o.rank) alpha=\(o.alpha) on \(o.targets.map(\.rawValue).joined(separator: ","))" : "")
            + (o.trainLayers.isEmpty ? "" : "; layers \(o.trainLayers.map(String.init).joined(separator: ",")) in full")
            + (o.trainLMHead ? "; lm_head and final norm" : ""))
        let optimizer = AdamW(trainable: trainable, learningRate: Float(o.lr), beta1: Float(o.beta1), beta2: Float(o.beta2),
                              eps: Float(o.eps), weightDecay: Float(o.weightDecay), decaysNormsAndBiases: o.decayNormsAndBiases)
        let batcher = try TrainingBatcher(windows: data.train, batchSize: o.batchSize * comm.size, seed: o.seed, shuffle: o.shuffle)
        let stepsPerEpoch = max(1, batcher.batchesPerEpoch / o.gradAccum)
        let totalSteps = o.steps ?? stepsPerEpoch * o.epochs
        let schedule = LearningRateSchedule(peak: o.lr, shape: o.schedule, warmupSteps: o.warmupSteps, totalSteps: totalSteps)
        let pass = LlamaTrainingPass(model: model, batch: o.batchSize, length: o.context, checkpointing: o.gradientCheckpointing)
        let L = model.layers.count
        let earlyExit = o.earlyExitLoss ? EarlyExitLoss(scale: o.earlyExitScale, curriculum: EarlyExitCurriculum(argument: o.earlyExitCurriculum) ?? .none) : nil
        let layerDropout = o.layerDropout > 0 ? LayerDropout(rate: o.layerDropout, shape: o.layerDropoutShape) : nil
        if let earlyExit {
            log("early-exit loss: scale \(earlyExit.scale), curriculum \(earlyExit.curriculum); weights "
                + ExitWeights(EarlyExitLoss.rawWeights(layers: L, scale: earlyExit.scale)).weights.map { String(format: "%.3f", $0) }.joined(separator: " "))
        }
        if let layerDropout {
            log("layer dropout: \(o.layerDropoutSchedule) P = \(o.layerDropout), per-layer rates "
                + layerDropout.rates(layers: L).map { String(format: "%.3f", $0) }.joined(separator: " "))
        }

        // Fresh start or resume.
        var step = 0, tokensSeen = 0
        var bestStep: Int?, bestLoss: Double?, evaluationsSinceBest = 0
        if resuming, comm.isRoot, let latest = TrainingCheckpoint.list(in: checkpoints).last {
            let state = try TrainingCheckpoint.load(FinetuneState.self, from: latest.url, into: trainable, optimizer: optimizer)
            var differences = try o.runChangingDifferences(from: state.options)
            if (state.ranks ?? 1) != comm.size { differences.append("batch-size × ranks (\(state.ranks ?? 1) ranks then, \(comm.size) now)") }
            if let first = differences.first {
                throw PruneError("--\(first)", "differs from the run being resumed (\(latest.url.path)); every flag that changes the run must match"
                                 + (differences.count > 1 ? " (also: \(differences.dropFirst().map { "--" + $0 }.joined(separator: ", ")))" : ""))
            }
            try batcher.restore(state.position)
            step = state.step
            tokensSeen = state.tokensSeen
            (bestStep, bestLoss, evaluationsSinceBest) = (state.bestStep, state.bestLoss, state.evaluationsSinceBest)
            log("resumed from \(latest.url.path) at step \(step)")
        } else if resuming && comm.isRoot {
            log("nothing to resume in \(checkpoints.path): starting from step 0")
        }
        if comm.size > 1 {   // rank 0's starting point (fresh or resumed) on every rank
            let state = try synchronize(trainable: trainable, optimizer: optimizer, batcher: batcher, state: FinetuneState(
                step: step, position: batcher.position, tokensSeen: tokensSeen, options: o, bestStep: bestStep, bestLoss: bestLoss,
                evaluationsSinceBest: evaluationsSinceBest, ranks: comm.size))
            (step, tokensSeen, bestStep, bestLoss, evaluationsSinceBest) = (state.step, state.tokensSeen, state.bestStep, state.bestLoss, state.evaluationsSinceBest)
        }
        if comm.isRoot {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            try writeConfiguration()
        }
        let metrics = !comm.isRoot ? nil : try MetricsLog(url: output.appendingPathComponent("metrics.jsonl"), truncatingAfterStep: step == 0 ? -1 : step)
        log("steps: \(totalSteps) (\(stepsPerEpoch) per epoch of \(batcher.batchesPerEpoch) batches × \(o.batchSize) windows, grad-accum \(o.gradAccum)); "
            + "lr \(o.lr) \(o.schedule.rawValue), warmup \(o.warmupSteps)")

        // Held-out loss before training.
        let evalWindows = Self.evaluationWindows(data.heldOut, tokens: o.evalTokens)
        var evaluationSeconds = 0.0   // kept out of the training rate
        func evaluate() -> LossTally? {
            guard !evalWindows.isEmpty else { return nil }
            let clock = Stopwatch()
            defer { evaluationSeconds += clock.elapsed }
            return Self.heldOutLoss(pass: pass, windows: evalWindows, batch: o.batchSize, context: o.context, communicator: comm)
        }
        /// One held-out evaluation into metrics.jsonl and the log ("eval before training", "eval at step 100"…).
        func report(_ t: LossTally, _ when: String) {
            metrics?.append(["step": step, "eval_loss": t.mean, "eval_perplexity": exp(t.mean), "eval_tokens": t.count])
            log(String(format: "eval %@: loss %.4f  perplexity %.2f  (%d tokens)", when, t.mean, exp(t.mean), t.count))
        }
        var before: Double?
        if step == 0, let t = evaluate() {
            before = t.mean
            report(t, "before training")
        }
        func result(_ ending: FinetuneResult.Ending, after: Double?) -> FinetuneResult {
            FinetuneResult(ending: ending, steps: step, heldOutLossBefore: before, heldOutLossAfter: after,
                           seconds: Date().timeIntervalSince(started), peakResidentBytes: ProcessMemory.peakResidentBytes)
        }

        // The steps.
        let loopClock = Stopwatch()
        evaluationSeconds = 0
        let stepsAtStart = step
        var lastSaved = step
        var stopAgreed = false   // under MPI: some rank was asked to stop (agreed in each step's reduction)
        func save() throws {
            defer { lastSaved = step }
            guard comm.isRoot else { return }
            let state = FinetuneState(step: step, position: batcher.position, tokensSeen: tokensSeen, options: o,
                                      bestStep: bestStep, bestLoss: bestLoss, evaluationsSinceBest: evaluationsSinceBest, ranks: comm.size)
            try TrainingCheckpoint.save(step: step, trainable: trainable, optimizer: optimizer, state: state, in: checkpoints,
                                        keep: o.keep, protecting: o.keepBest ? Set([bestStep].compactMap { $0 }) : [])
            lastSaved = step
        }
        var lastEvaluation: (step: Int, loss: Double)?
        /// Records an evaluation during training: a new best is saved (kept with --keep-best).
        func record(_ loss: Double) throws {
            lastEvaluation = (step, loss)
            if loss < (bestLoss ?? .infinity) {
                (bestStep, bestLoss, evaluationsSinceBest) = (step, loss, 0)
                if o.keepBest && lastSaved != step { try save() }
            } else {
                evaluationsSinceBest += 1
            }
        }
        let optimizerStep = OptimizerStep(options: o, pass: pass, trainable: trainable, optimizer: optimizer, batcher: batcher,
                                          schedule: schedule, earlyExit: earlyExit, layerDropout: layerDropout,
                                          distillation: distillation, communicator: comm,
                                          totalSteps: totalSteps)
        while step < totalSteps {
            if comm.size == 1 ? stop.isRequested : stopAgreed {
                if lastSaved != step { try save() }
                log("interrupted: checkpoint of step \(step) saved in \(checkpoints.path); continue with --resume \(o.output)")
                return result(.interrupted, after: nil)
            }
            let done: OptimizerStep.Outcome
            do { done = try optimizerStep.run(step: step, stopRequested: { stop.isRequested }) } catch let bad as OptimizerStep.NonFinite {
                throw PruneError("training", "step \(step + 1): the \(bad.what) is \(bad.value); stopped."
                                 + (lastSaved > 0 ? " The last good checkpoint is step \(lastSaved) in \(checkpoints.path)." : " No checkpoint was saved.")
                                 + " Try a lower --lr or --max-grad-norm 1")
            }
            stopAgreed = done.stopAgreed
            step += 1
            tokensSeen += done.tokens
            let elapsed = loopClock.elapsed
            let training = max(elapsed - evaluationSeconds, 1e-9)
            let rate = Double((step - stepsAtStart) * done.tokens) / training
            metrics?.append(["step": step, "loss": done.loss, "lr": done.learningRate, "grad_norm": done.gradientNorm, "tokens": tokensSeen,
                            "counted_targets": done.countedTargets, "tokens_per_second": rate, "elapsed": elapsed,
                            "epoch": Double(step) / Double(stepsPerEpoch)]
                            .merging(done.distillation.map { Self.distillationMetrics($0, hidden: (distillation?.hiddenWeight ?? 0) > 0) } ?? [:]) { a, _ in a }
                            .merging(comm.size > 1 ? ["ranks": comm.size, "communication_seconds": done.communicationSeconds,
                                                      "allreduce_seconds": done.allreduceSeconds] : [:]) { a, _ in a })
            progress?(.trainingStep(step: step, steps: totalSteps, loss: done.loss, learningRate: done.learningRate, gradientNorm: done.gradientNorm,
                                    tokensPerSecond: rate, secondsPerStep: training / Double(step - stepsAtStart), elapsed: elapsed))
            if o.evalEvery > 0 && step % o.evalEvery == 0 && step < totalSteps, let t = evaluate() {
                report(t, "at step \(step)")
                try record(t.mean)
                if o.earlyStop > 0 && evaluationsSinceBest >= o.earlyStop {
                    log("early stop: \(evaluationsSinceBest) evaluations without a lower held-out loss than step \(bestStep ?? 0)'s")
                    if o.saveEvery > 0 && step % o.saveEvery == 0 { try save() }
                    break
                }
            }
            if o.saveEvery > 0 && step % o.saveEvery == 0 && step < totalSteps { try save() }
        }

        // The end: evaluation, a final checkpoint, the exports, the loss curve.
        if earlyExit != nil, !evalWindows.isEmpty {
            let perExit = Self.heldOutExitLosses(pass: pass, windows: evalWindows, batch: o.batchSize, context: o.context, layers: L)
            metrics?.append(["step": step, "eval_exit_losses": perExit])
            log("held-out loss of each exit (layer 0…\(L - 1)): " + perExit.map { String(format: "%.3f", $0) }.joined(separator: " "))
        }
        var after: Double? = lastEvaluation?.step == step ? lastEvaluation?.loss : nil
        if after == nil, let t = evaluate() {
            after = t.mean
            report(t, "after training")
            try record(t.mean)
        }
        if lastSaved != step { try save() }
        guard comm.isRoot else { return result(.finished, after: after) }
        var exported = step
        if o.keepBest, let bestStep, bestStep != step {
            let best = TrainingCheckpoint.directory(step: bestStep, in: checkpoints)
            _ = try TrainingCheckpoint.load(FinetuneState.self, from: best, into: trainable, optimizer: optimizer)
            exported = bestStep
            after = bestLoss
            log(String(format: "exporting step %d, the lowest held-out loss (%.4f), not the last step %d", bestStep, bestLoss ?? .nan, step))
        }
        if o.lora {
            try FinetuneExport.adapter(of: model, dropout: o.dropout, baseModel: o.model, to: output.appendingPathComponent("adapter"))
        }
        let mergedURL = output.appendingPathComponent("merged")
        let card = FinetuneExport.Card(options: o, step: exported, heldOutBefore: before, heldOutAfter: after)
        // Self-check: the files just written compute what the model in memory computes, and keep its held-out loss.
        let probe = (data.heldOut.first ?? data.train[0]).tokens
        let heldOut: ((LlamaModel) -> Double)? = evalWindows.isEmpty ? nil : { merged in
            Self.heldOutLoss(pass: LlamaTrainingPass(model: merged, batch: o.batchSize, length: o.context), windows: evalWindows,
                             batch: o.batchSize, context: o.context).mean
        }
        func export(_ dtype: SafetensorsDType?) throws -> ExportCheck.Result {
            try FinetuneExport.merged(trainable: trainable, base: base, dtype: dtype, card: card, to: mergedURL)
            return try ExportCheck.verify(merged: mergedURL, against: model, tokens: probe, parallelism: parallelism, heldOut: heldOut)
        }
        var check = try export(try o.dtype.map { try SafetensorsDType.output($0) })
        if let metrics { try writeLossCurve(metrics.url) }
        log("wrote " + (o.lora ? "\(output.path)/adapter (PEFT), " : "") + "\(mergedURL.path) (step \(exported)), metrics.jsonl, loss.svg")
        log(check.summary)
        if let merged = check.heldOutLoss, let after {
            log(String(format: "held-out loss of the merged files (%@): %.4f; of the model in memory: %.4f", check.dtype, merged, after))
            if let before, let given = ExportCheck.roundingGivesBack(before: before, after: after, merged: merged), check.dtype != "float32" {
                let what = String(format: "storing the merge in %@ gives back %.0f%% of what training gained (held-out loss %.4f → %.4f in memory, "
                                  + "%.4f from the files)", check.dtype, 100 * given, before, after, merged)
                if o.dtype == nil {
                    log("note: \(what); writing the merge in f32 instead (give --dtype \(check.dtype == "float16" ? "f16" : "bf16") to keep 16 bits)")
                    check = try export(.F32)
                    log(check.summary)
                    if let again = check.heldOutLoss { log(String(format: "held-out loss of the f32 merged files: %.4f", again)) }
                } else {
                    log("warning: \(what); --dtype \(o.dtype!) was asked for (f32 keeps the gain)")
                }
            }
        }
        if o.gguf {
            let report = try GGUFModelExport.write(model: mergedURL, to: output.appendingPathComponent("merged.gguf"), fileType: nil, force: true)
            log(report.text.trimmingCharacters(in: .newlines))
        }
        return result(.finished, after: after)
    }

    // MARK: pieces

    /// OUT/config.json: the resolved options (what --resume compares against).
    func writeConfiguration() throws {
        try AtomicFile.write(try JSONEncoder.sorted.encode(options), to: FinetuneOptions.savedFile(in: output))
    }

    /// The memory a step of `o` needs before the model is loaded: LoRA matrices (and their gradients and moments)
    /// on the chosen targets and layers, full layers and the lm_head trained in place, and a distillation `teacher`.
    static func memoryEstimate(_ o: FinetuneOptions, config c: LlamaConfig, threads: Int, teacher: LlamaConfig? = nil) -> MemoryEstimate {
        let L = c.numHiddenLayers
        let lora = o.lora ? MemoryEstimate.loraParameters(config: c, rank: o.rank, targets: o.targets, layers: o.loraLayers?.count ?? L) : 0
        // The config was validated against its files before this is called: the count cannot overflow.
        let perLayer = CheckpointValidation.layerParameterCount(c) ?? 0
        let full = o.trainLayers.count * perLayer + (o.trainLMHead ? c.vocabSize * c.hiddenSize + c.hiddenSize : 0)
        return MemoryEstimate.training(config: c, batch: o.batchSize, context: o.context, threads: threads,
                                       trainableParameters: lora + full, separateTrainable: lora,
                                       loraWidth: o.lora ? o.rank * o.targets.count : 0, checkpointing: o.gradientCheckpointing,
                                       teacher: teacher)
    }

    /// The teacher of --teacher, loaded in its stored dtype (the memory check counted it), with the run's α, τ and β.
    /// A teacher that does not fit the student (another vocabulary) is refused naming its directory.
    func distillation(from teacher: ValidatedCheckpoint, student: LlamaConfig) throws -> Distillation {
        let o = options, path = o.teacher ?? teacher.directory.path, d = FinetuneOptions.distillationDefaults
        let model = try LlamaModel.load(teacher, weightsDType: .stored, parallelism: parallelism)
        try model.compute(in: o.compute)
        let distillation: Distillation
        do {
            distillation = try Distillation(teacher: model, student: student, weight: o.distillWeight ?? d.weight,
                                            temperature: o.distillTemperature ?? d.temperature, hiddenWeight: o.distillHidden ?? d.hidden)
        } catch let e as PruneError {
            throw PruneError("--teacher \(path)", e.problem)
        }
        if communicator.isRoot {
            log("teacher: \(path) (\(model.layers.count) layers, \(model.parameterCount) parameters); loss (1 − α)·CE + α·τ²·KL"
                + (distillation.hiddenWeight > 0 ? " + β·hidden" : "") + " with α = \(distillation.weight), τ = \(distillation.temperature)"
                + (distillation.hiddenWeight > 0 ? ", β = \(distillation.hiddenWeight)" : ""))
        }
        return distillation
    }

    /// A step's metrics.jsonl keys for the distilled loss's parts, each a mean over the counted targets: ce, kl, and
    /// hidden when that term is on.
    static func distillationMetrics(_ parts: DistillationTally, hidden: Bool) -> [String: Any] {
        ["ce": parts.meanCrossEntropy, "kl": parts.meanDivergence].merging(hidden ? ["hidden": parts.meanHidden] : [:]) { a, _ in a }
    }

    /// Copies a PEFT adapter's A and B into the trainable set (same rank, targets and layers required).
    func loadAdapter(_ dir: URL, into trainable: TrainableSet) throws {
        let adapter = try PEFTAdapter.read(dir)
        try adapter.checkBase(URL(fileURLWithPath: options.model), directory: dir, force: options.force)
        try adapter.validate(against: trainable.model.config, directory: dir)
        guard adapter.config.rank == options.rank else {
            throw PruneError(file: dir, "adapter rank \(adapter.config.rank) differs from --rank \(options.rank)")
        }
        for w in adapter.weights {
            for (isA, tensor) in [(true, w.a), (false, w.b)] {
                let name = WeightNames.peftLoRA(w.projection, layer: w.layer, isA: isA)
                guard let p = trainable.parameter(named: name) else {
                    throw PruneError(file: dir, "adapts \(WeightNames.projection(w.projection, layer: w.layer)), which this run does not train (--targets, --lora-layers)")
                }
                p.value.data.update(from: tensor.data, count: tensor.count)
            }
        }
        if adapter.config.scale != Float(options.alpha) / Float(options.rank) {
            log("note: \(dir.path) was trained with scale \(adapter.config.scale); this run uses alpha/r = \(options.alpha / Double(options.rank))")
        }
    }

    /// The held-out windows an evaluation reads: all, or the first ones holding `tokens` counted targets.
    static func evaluationWindows(_ windows: [TrainingWindow], tokens: Int) -> [TrainingWindow] {
        guard tokens > 0 else { return windows }
        var out: [TrainingWindow] = [], counted = 0
        for w in windows where counted < tokens {
            out.append(w)
            counted += w.countedTargets
        }
        return out
    }

    /// Mean loss over `windows` in batches of `batch` (the last one filled with uncounted copies); under MPI
    /// rank r takes batches r, r+N, … and the tallies are summed.
    static func heldOutLoss(pass: LlamaTrainingPass, windows: [TrainingWindow], batch: Int, context: Int,
                            communicator comm: Communicator = SingleProcess()) -> LossTally {
        var tally = LossTally()
        var i = comm.rank * batch
        while i < windows.count {
            var picked = Array(windows[i..<min(i + batch, windows.count)])
            while picked.count < batch {
                picked.append(TrainingWindow(tokens: picked[0].tokens, targets: Array(repeating: TrainingWindow.ignoreIndex, count: context)))
            }
            tally.add(pass.loss(tokens: picked.flatMap(\.tokens), targets: picked.flatMap(\.targets)))
            i += batch * comm.size
        }
        return comm.size > 1 ? reduced(tally, communicator: comm) : tally
    }

    /// Each exit's mean held-out loss (layer l's output through the final norm and lm_head).
    static func heldOutExitLosses(pass: LlamaTrainingPass, windows: [TrainingWindow], batch: Int, context: Int, layers L: Int) -> [Double] {
        var sums = [LossTally](repeating: LossTally(), count: L)
        let all = ExitWeights([Double](repeating: 1, count: L))
        var i = 0
        while i < windows.count {
            var picked = Array(windows[i..<min(i + batch, windows.count)])
            while picked.count < batch {
                picked.append(TrainingWindow(tokens: picked[0].tokens, targets: Array(repeating: TrainingWindow.ignoreIndex, count: context)))
            }
            _ = pass.loss(tokens: picked.flatMap(\.tokens), targets: picked.flatMap(\.targets), exits: all)
            for l in 0..<L { if let t = pass.exitTallies[l] { sums[l].add(t) } }
            i += batch
        }
        return sums.map(\.mean)
    }

    /// The LoRA dropout key of one micro-batch: fixed by (seed, step, micro-batch), so a resumed run draws the
    /// same masks.
    static func dropoutKey(seed: UInt64, step: Int, microBatch: Int) -> UInt64 {
        var z = seed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(microBatch) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 31)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 29)
    }

    /// OUT/loss.svg: training loss per step and held-out loss at each evaluation.
    func writeLossCurve(_ metricsURL: URL) throws {
        let records = try MetricsLog.read(metricsURL)
        let train = records.compactMap { r -> (x: Double, y: Double)? in
            guard let s = r["step"] as? Int, let l = r["loss"] as? Double else { return nil }
            return (Double(s), l)
        }
        let held = records.compactMap { r -> (x: Double, y: Double)? in
            guard let s = r["step"] as? Int, let l = r["eval_loss"] as? Double else { return nil }
            return (Double(s), l)
        }
        let svg = LineChartSVG.render(series: [LineChartSVG.Series(name: "training loss", points: train),
                                               LineChartSVG.Series(name: "held-out loss", points: held, markers: true)],
                                      title: "finetune \(URL(fileURLWithPath: options.model).lastPathComponent) on \(URL(fileURLWithPath: options.dataset).lastPathComponent)",
                                      xAxis: "optimizer step", yAxis: "next-token loss")
        try AtomicFile.write(Data(svg.utf8), to: output.appendingPathComponent("loss.svg"))
    }
}
