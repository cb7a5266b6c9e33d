// `finetune`: heal a (cut) model with LoRA and/or partial finetuning on a domain dataset, then export a PEFT
// adapter and a merged checkpoint. The command only parses flags into `FinetuneOptions` and runs `Finetuner`;
// every failure a user can act on is one line on stderr and a non-zero exit; Ctrl-C saves a checkpoint and
// exits 130.
import ArgumentParser
import CLISupport
import Checkpoint
import Cluster
import Finetuning
import Foundation
import Jobs
import Llama
import Support
import Tensor
import Training

@main
struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Heal a model with LoRA and/or by training its last layers, on a domain dataset.",
        discussion: """
        Examples:
          finetune out/cut --lora --dataset train.jsonl -o out/healed
          finetune out/cut --lora --dataset train.jsonl --steps 120 --lr 2e-4 --warmup-steps 10 -o out/healed
          finetune out/cut --train-layers last:3 --train-lm-head --dataset train.jsonl -o out/partial
          finetune --resume out/healed            (continue an interrupted run exactly)

        Data: .txt (one document), or JSONL with {"text"}, {"input_ids"}, {"prompt","completion"} (loss on the completion) or {"messages": [...]} (chat template, loss on assistant turns). Documents are joined with EOS and cut into --context windows unless --no-packing. Without --valid, every 20th record (or window of a single document) is held out for evaluation.

        Writes OUT/config.json (the resolved options), OUT/metrics.jsonl (one line per step and evaluation), OUT/checkpoints/step-N, OUT/adapter (PEFT format, with --lora), OUT/merged (a complete checkpoint) and OUT/loss.svg.

        Data parallel: `mpirun -np N finetune … --batch-size B` trains global micro-batches of N·B windows (the result of one process with --batch-size N·B, within float rounding); rank 0 writes everything. Threads per rank default to the cores divided by the ranks on the machine. A resume needs the same N.
        """,
        version: SystemReport.lines(threads: Parallelism.allCores.threads).joined(separator: "\n"))

    @Argument(help: "Checkpoint directory to train (omit with --resume).")
    var model: String?

    // Data
    @Option(help: "Training data (.txt or .jsonl).") var dataset: String?
    @Option(help: "Held-out data (default: every 20th record of --dataset).") var valid: String?
    @Option(name: [.short, .customLong("output")], help: "Output directory.") var output: String?
    @Option(help: "Tokens per window (default 256).") var context: Int?
    @Flag(help: "One sample per window (truncated or padded) instead of packing documents.") var noPacking = false

    // What trains
    @Flag(help: "Train LoRA adapters.") var lora = false
    @Option(help: "LoRA rank r (default 8).") var rank: Int?
    @Option(help: "LoRA alpha; the update is scaled by alpha/r (default 16).") var alpha: Double?
    @Option(help: "LoRA dropout on the adapter's input, as PEFT's lora_dropout (default 0).") var dropout: Double?
    @Option(help: "Projections to adapt, comma-separated: q,k,v,o,gate,up,down or all (default all).") var targets: String?
    @Option(help: "Layers that get adapters: e.g. 0-9, 3,5 or last:4 (default all).") var loraLayers: String?
    @Option(help: "Layers trained in full: e.g. last:3 or 20-22.") var trainLayers: String?
    @Flag(help: "Train lm_head (the embedding when tied) and the final norm.") var trainLmHead = false
    @Option(help: "Start the adapters from this PEFT adapter directory (its r, lora_alpha, target_modules, layers_to_transform and lora_dropout are used unless given).") var initAdapter: String?
    @Flag(help: "Use --init-adapter even when it records another base model.") var force = false

    // Optimizer
    @Option(help: "Peak learning rate (default 2e-4).") var lr: Double?
    @Option(help: "AdamW beta1 (default 0.9).") var beta1: Double?
    @Option(help: "AdamW beta2 (default 0.999).") var beta2: Double?
    @Option(help: "AdamW eps (default 1e-8).") var eps: Double?
    @Option(help: "Decoupled weight decay (default 0; norms and biases are never decayed unless --decay-norms-and-biases).") var weightDecay: Double?
    @Flag(help: "Decay norm weights and biases too (torch's AdamW over every parameter).") var decayNormsAndBiases = false
    @Option(help: "Learning-rate schedule after warmup: cosine, linear or constant (default cosine).") var schedule: String?
    @Option(help: "Linear warmup steps from 0 (default 0).") var warmupSteps: Int?
    @Option(help: "Clip the global gradient norm to this (0 = off; default 1).") var maxGradNorm: Double?
    @Option(help: "Windows per micro-batch (default 4).") var batchSize: Int?
    @Option(help: "Micro-batches per optimizer step (default 1).") var gradAccum: Int?
    @Option(help: "Optimizer steps (default: --epochs passes over the data).") var steps: Int?
    @Option(help: "Passes over the data when --steps is not given (default 1).") var epochs: Int?
    @Option(help: "Seed of the adapter init, data order and dropout (default 42).") var seed: UInt64?
    @Flag(help: "Keep the data in file order.") var noShuffle = false
    @Flag(help: "Recompute each block during backward (less memory, about a third more time).") var gradientCheckpointing = false

    // LayerSkip
    @Flag(help: "Train every layer's exit (final norm + lm_head on its output): LayerSkip's early-exit loss.") var earlyExitLoss = false
    @Option(help: "S, the weight scale of the intermediate exits (default 1).") var earlyExitScale: Double?
    @Option(help: "Which exits train at each step: none, rotational:R or gradual (default none).") var earlyExitCurriculum: String?
    @Option(help: "LayerSkip layer dropout: the last layer's rate P (earlier layers less; default 0 = off).") var layerDropout: Double?
    @Option(help: "Rates over depth: exponential (the paper's), linear or uniform (default exponential).") var layerDropoutShape: String?
    @Option(help: "P over the run: constant, or linear (from 0 up to P) (default constant).") var layerDropoutSchedule: String?

    // Bookkeeping
    @Option(help: "Evaluate on held-out data every N steps (default 0: before and after only).") var evalEvery: Int?
    @Option(help: "Held-out tokens per evaluation (default 0: all).") var evalTokens: Int?
    @Option(help: "Save a checkpoint every N steps (default 0: at the end and on Ctrl-C).") var saveEvery: Int?
    @Option(help: "Checkpoints kept (default 2).") var keep: Int?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "How the base's bf16/f16 matrices are held: stored (mapped as they are, widened inside the matrix multiplies; half the memory, same results) or f32 (default stored).") var weightsDtype: String?
    @Option(help: "Dtype of OUT/merged: f32, bf16 or f16 (default: the base model's).") var dtype: String?
    @Flag(help: "Export the checkpoint with the lowest held-out loss (needs --eval-every).") var keepBest = false
    @Option(help: "Stop after N evaluations without a lower held-out loss (needs --eval-every).") var earlyStop: Int?
    @Option(help: "Continue the run in this output directory from its newest checkpoint.") var resume: String?

    func run() throws {
        // Under mpirun rank 0 resolves the options (it alone reads OUT/config.json on --resume) and sends them.
        let comm = Self.communicator
        let options = comm.size == 1 ? try resolvedOptions() : try comm.broadcast(comm.isRoot ? try resolvedOptions() : nil)
        let parallelism = Parallelism(threads: options.threads ?? max(1, Parallelism.allCores.threads / Cluster.localRanks))
        let stop = StopRequest()
        let interrupts = Self.watchInterrupts(stop)
        defer { interrupts.forEach { $0.cancel() } }
        let finetuner = Finetuner(options: options, parallelism: parallelism, stop: stop, progress: ProgressPrinter().sink) {
            FileHandle.standardError.write(Data(($0 + "\n").utf8))
        }
        finetuner.communicator = Self.communicator
        if Self.communicator.size > 1 {
            finetuner.log("data parallel: \(Self.communicator.size) ranks × --batch-size \(options.batchSize) (global micro-batch \(Self.communicator.size * options.batchSize) windows)")
        }
        let result = try finetuner.run(resuming: resume != nil)
        Self.communicator.finalize()
        if result.ending == .interrupted { throw ExitCode(130) }
        guard Self.communicator.isRoot else { return }
        var line = String(format: "done: %d steps in %.0f s, peak memory %.2f GB", result.steps, result.seconds,
                          Double(result.peakResidentBytes) / 1e9)
        if let b = result.heldOutLossBefore, let a = result.heldOutLossAfter {
            line += String(format: "; held-out perplexity %.2f → %.2f", exp(b), exp(a))
        }
        print(line)
    }

    /// Defaults, or the resumed run's saved options, with every flag given here applied on top.
    func resolvedOptions() throws -> FinetuneOptions {
        var o: FinetuneOptions
        if let resume {
            let url = FinetuneOptions.savedFile(in: URL(fileURLWithPath: resume))
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw PruneError(file: url, "not found: --resume takes the output directory of an earlier run")
            }
            o = try FinetuneOptions.saved(in: URL(fileURLWithPath: resume))
            if let output, URL(fileURLWithPath: output).standardizedFileURL != URL(fileURLWithPath: resume).standardizedFileURL {
                throw PruneError("-o", "\(output) differs from --resume \(resume); a run resumes in its own directory")
            }
            o.output = resume
            if let model { o.model = model }
            if let dataset { o.dataset = dataset }
        } else {
            guard let model else { throw ValidationError("give the model directory (or --resume OUT)") }
            guard let dataset else { throw ValidationError("--dataset is required") }
            guard let output else { throw ValidationError("-o/--output is required") }
            o = FinetuneOptions(model: model, dataset: dataset, output: output)
            let out = URL(fileURLWithPath: output)
            // The model's own config.json is not an earlier run: advising --resume there would fail.
            if out.resolvedPath == URL(fileURLWithPath: model).resolvedPath {
                throw PruneError("-o", "\(output) is the model directory; the run writes config.json, checkpoints and merged/ there, so choose another -o")
            }
            if FileManager.default.fileExists(atPath: FinetuneOptions.savedFile(in: out).path) {
                guard (try? FinetuneOptions.saved(in: out)) != nil else {
                    throw PruneError(file: out, "holds a config.json that is not a finetune run's (a checkpoint?); choose another -o")
                }
                throw PruneError(file: out, "holds an earlier run; continue it with --resume \(output) or choose another -o")
            }
        }
        if let valid { o.valid = valid }
        if let context { o.context = context }
        if noPacking { o.packing = false }
        if lora { o.lora = true }
        if let rank { o.rank = rank }
        if let alpha { o.alpha = alpha }
        if let dropout { o.dropout = dropout }
        if let targets {
            let names = targets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            o.targets = names == ["all"] ? Projection.allCases : try names.map { name in
                guard let p = Projection.allCases.first(where: { $0.rawValue == name || $0.rawValue == name + "_proj" || $0.rawValue.hasPrefix(name + "_") }) else {
                    throw PruneError("--targets", "\"\(name)\" is not one of q, k, v, o, gate, up, down")
                }
                return p
            }
        }
        let layerCount = try LlamaConfig.load(URL(fileURLWithPath: o.model).appendingPathComponent("config.json")).numHiddenLayers
        if let loraLayers { o.loraLayers = try FinetuneOptions.layers(loraLayers, of: layerCount, option: "--lora-layers") }
        if let trainLayers { o.trainLayers = try FinetuneOptions.layers(trainLayers, of: layerCount, option: "--train-layers") }
        if trainLmHead { o.trainLMHead = true }
        if let initAdapter { o.initAdapter = initAdapter }
        if let lr { o.lr = lr }
        if let beta1 { o.beta1 = beta1 }
        if let beta2 { o.beta2 = beta2 }
        if let eps { o.eps = eps }
        if let weightDecay { o.weightDecay = weightDecay }
        if decayNormsAndBiases { o.decayNormsAndBiases = true }
        if let schedule {
            guard let s = LearningRateSchedule.Shape(rawValue: schedule) else {
                throw PruneError("--schedule", "\"\(schedule)\" is not cosine, linear or constant")
            }
            o.schedule = s
        }
        if let warmupSteps { o.warmupSteps = warmupSteps }
        if let maxGradNorm { o.maxGradNorm = maxGradNorm }
        if let batchSize { o.batchSize = batchSize }
        if let gradAccum { o.gradAccum = gradAccum }
        if let steps { o.steps = steps }
        if let epochs { o.epochs = epochs }
        if let seed { o.seed = seed }
        if noShuffle { o.shuffle = false }
        if gradientCheckpointing { o.gradientCheckpointing = true }
        if let evalEvery { o.evalEvery = evalEvery }
        if let evalTokens { o.evalTokens = evalTokens }
        if let saveEvery { o.saveEvery = saveEvery }
        if let keep { o.keep = keep }
        if let threads { o.threads = threads }
        if let weightsDtype { o.weightsDType = weightsDtype }
        if let dtype { o.dtype = dtype }
        if force { o.force = true }
        if earlyExitLoss { o.earlyExitLoss = true }
        if let earlyExitScale { o.earlyExitScale = earlyExitScale }
        if let earlyExitCurriculum { o.earlyExitCurriculum = earlyExitCurriculum }
        if let layerDropout { o.layerDropout = layerDropout }
        if let layerDropoutShape {
            guard let shape = LayerDropoutShape(rawValue: layerDropoutShape) else {
                throw PruneError("--layer-dropout-shape", "\"\(layerDropoutShape)\" is not exponential, linear or uniform")
            }
            o.layerDropoutShape = shape
        }
        if let layerDropoutSchedule { o.layerDropoutSchedule = layerDropoutSchedule }
        if keepBest { o.keepBest = true }
        if let earlyStop { o.earlyStop = earlyStop }
        if let initAdapter, resume == nil {
            let given = [("rank", rank != nil), ("alpha", alpha != nil), ("dropout", dropout != nil), ("targets", targets != nil),
                         ("lora-layers", loraLayers != nil)].filter(\.1).map(\.0)
            let dir = URL(fileURLWithPath: initAdapter)
            try o.adopt(PEFTAdapter.readConfig(dir), from: dir.appendingPathComponent(PEFTAdapter.configFile), given: Set(given))
        }
        try o.validate(layers: layerCount)
        return o
    }

    /// Ctrl-C (SIGINT) and SIGTERM ask the loop to stop at the next step boundary and save; a second one exits at once.
    /// Under mpirun, which ends the job on SIGINT and SIGTERM but forwards SIGUSR1 to every rank, `kill -USR1` to
    /// mpirun does the same: the ranks agree at the next step, rank 0 saves, and the job exits 130.
    static func watchInterrupts(_ stop: StopRequest) -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM, SIGUSR1].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if stop.isRequested { Foundation.exit(128 + sig) }
                FileHandle.standardError.write(Data("\nstopping after this step (again to quit at once)…\n".utf8))
                stop.request()
            }
            source.resume()
            return source
        }
    }

    /// The job's ranks: MPI's under mpirun, else one.
    nonisolated(unsafe) static var communicator: Communicator = SingleProcess()

    /// Runs the command; every failure becomes one line on stderr and a non-zero exit. Under mpirun a failing
    /// rank ends the whole job (MPI_Abort), so that no other rank waits for it in a collective.
    static func main() {
        do {
            var command = try parseAsRoot()
            do { _ = try BLASRuntime.load() } catch { throw PruneError("", "\(error)") }
            do { communicator = try Cluster.start() } catch { throw PruneError("mpirun", "\(error)") }
            try command.run()
        } catch let error as PruneError {
            FileHandle.standardError.write(Data("error: \(communicator.size > 1 ? "rank \(communicator.rank): " : "")\(error.description)\n".utf8))
            if communicator.size > 1 { communicator.abort(code: 1) }
            Foundation.exit(1)
        } catch let exit as ExitCode where communicator.size > 1 && exit != .success {
            communicator.abort(code: exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }
            let message = Finetune.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("error: \(message) (see `finetune --help`)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }
}
