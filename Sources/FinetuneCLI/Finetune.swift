// `finetune`: heal a (cut) model with LoRA and/or partial finetuning on a domain dataset, then export a PEFT
// adapter and a merged checkpoint. The command only parses flags into `FinetuneOptions` and runs `Finetuner`;
// every failure a user can act on is one line on stderr and a non-zero exit (ToolMain); Ctrl-C saves a checkpoint
// and exits 130.
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
          finetune out/cut --lora --teacher model --distill-weight 0.5 --dataset train.jsonl -o out/distilled
          finetune --resume out/healed            (continue an interrupted run exactly)

        Data: .txt (one document), or JSONL with {"text"}, {"input_ids"}, {"prompt","completion"} (loss on the completion) or {"messages": [...]} (chat template, loss on assistant turns). Documents are joined with EOS and cut into --context windows unless --no-packing. Without --valid, every 20th record (or window of a single document) is held out for evaluation.

        Writes OUT/config.json (the resolved options), OUT/metrics.jsonl (one line per step and evaluation), OUT/checkpoints/step-N, OUT/adapter (PEFT format, with --lora), OUT/merged (a complete checkpoint) and OUT/loss.svg.

        Distillation: with --teacher (the model the cut came from) each step's loss is (1 − α)·CE + α·τ²·KL(p_teacher,τ ‖ p_student,τ) over the counted positions (+ β·the normalised hidden-state MSE with --distill-hidden β); metrics.jsonl gets the parts as ce, kl (and hidden). The held-out loss stays the plain cross-entropy.

        Data parallel: `mpirun -np N finetune … --batch-size B` trains global micro-batches of N·B windows (the result of one process with --batch-size N·B, within float rounding); rank 0 writes everything. Threads per rank default to the cores divided by the ranks on the machine. A resume needs the same N.
        """,
        version: SystemReport.lines(threads: Parallelism.allCores.threads).joined(separator: "\n"))

    @Argument(help: "Checkpoint directory to train (omit with --resume).")
    var model: String?

    // The flags below and those of the option groups (shared with prune), except model, dataset, output and resume,
    // reach FinetuneOptions under their own names (givenFlags): a flag's name is its setting's key there. Each is nil
    // or false unless given, so that a resumed run keeps its saved value for every flag left out; the defaults are
    // FinetuneOptions.defaults.

    // Data
    @Option(help: "Training data (.txt or .jsonl).") var dataset: String?
    @Option(help: "Held-out data (default: every 20th record of --dataset).") var valid: String?
    @Option(name: [.short, .customLong("output")], help: "Output directory.") var output: String?
    @OptionGroup var windows: WindowOptions<TrainingWindows>
    @Flag(help: "One sample per window (truncated or padded) instead of packing documents.") var noPacking = false

    // What trains
    @Flag(help: "Train LoRA adapters.") var lora = false
    @Option(help: "LoRA rank r (default \(FinetuneOptions.defaults.rank)).") var rank: Int?
    @Option(help: "LoRA alpha; the update is scaled by alpha/r (default \(FinetuneOptions.defaults.alpha)).") var alpha: Double?
    @Option(help: "LoRA dropout on the adapter's input, as PEFT's lora_dropout (default \(FinetuneOptions.defaults.dropout)).") var dropout: Double?
    @Option(help: "Projections to adapt, comma-separated: q,k,v,o,gate,up,down or all (default all).") var targets: String?
    @Option(help: "Layers that get adapters: e.g. 0-9, 3,5 or last:4 (default all).") var loraLayers: String?
    @Option(help: "Layers trained in full: e.g. last:3 or 20-22.") var trainLayers: String?
    @Flag(help: "Train lm_head (the embedding when tied) and the final norm.") var trainLmHead = false
    @Option(help: "Start the adapters from this PEFT adapter directory (its r, lora_alpha, target_modules, layers_to_transform and lora_dropout are used unless given).") var initAdapter: String?
    @Flag(help: "Use --init-adapter even when it records another base model.") var force = false

    // Optimizer
    @Option(help: "Peak learning rate (default \(FinetuneOptions.defaults.lr)).") var lr: Double?
    @Option(help: "AdamW beta1 (default \(FinetuneOptions.defaults.beta1)).") var beta1: Double?
    @Option(help: "AdamW beta2 (default \(FinetuneOptions.defaults.beta2)).") var beta2: Double?
    @Option(help: "AdamW eps (default \(FinetuneOptions.defaults.eps)).") var eps: Double?
    @Option(help: "Decoupled weight decay (default \(FinetuneOptions.defaults.weightDecay); norms and biases are never decayed unless --decay-norms-and-biases).") var weightDecay: Double?
    @Flag(help: "Decay norm weights and biases too (torch's AdamW over every parameter).") var decayNormsAndBiases = false
    @Option(help: "Learning-rate schedule after warmup (default \(FinetuneOptions.defaults.schedule.rawValue)).") var schedule: LearningRateSchedule.Shape?
    @Option(help: "Linear warmup steps from 0 (default \(FinetuneOptions.defaults.warmupSteps)).") var warmupSteps: Int?
    @Option(help: "Clip the global gradient norm to this (0 = off; default \(FinetuneOptions.defaults.maxGradNorm)).") var maxGradNorm: Double?
    @Option(help: "Micro-batches per optimizer step (default \(FinetuneOptions.defaults.gradAccum)).") var gradAccum: Int?
    @Option(help: "Optimizer steps (default: --epochs passes over the data).") var steps: Int?
    @Option(help: "Passes over the data when --steps is not given (default \(FinetuneOptions.defaults.epochs)).") var epochs: Int?
    @Option(help: "Seed of the adapter init, data order and dropout (default \(FinetuneOptions.defaults.seed)).") var seed: UInt64?
    @Flag(help: "Keep the data in file order.") var noShuffle = false
    @Flag(help: "Recompute each block during backward (less memory, about a third more time).") var gradientCheckpointing = false

    // LayerSkip
    @Flag(help: "Train every layer's exit (final norm + lm_head on its output): LayerSkip's early-exit loss.") var earlyExitLoss = false
    @Option(help: "S, the weight scale of the intermediate exits (default \(FinetuneOptions.defaults.earlyExitScale)).") var earlyExitScale: Double?
    @Option(help: "Which exits train at each step: none, rotational:R or gradual (default \(FinetuneOptions.defaults.earlyExitCurriculum)).") var earlyExitCurriculum: String?
    @Option(help: "LayerSkip layer dropout: the last layer's rate P (earlier layers less; default \(FinetuneOptions.defaults.layerDropout) = off).") var layerDropout: Double?
    @Option(help: "Rates over depth: exponential is the paper's (default \(FinetuneOptions.defaults.layerDropoutShape.rawValue)).") var layerDropoutShape: LayerDropoutShape?
    @Option(help: "P over the run: constant, or linear (from 0 up to P) (default \(FinetuneOptions.defaults.layerDropoutSchedule)).") var layerDropoutSchedule: String?

    // Distillation
    @Option(help: "Distil from this checkpoint (the original model, run in its stored dtype): the loss becomes (1 − α)·CE + α·τ²·KL(teacher ‖ student) at temperature τ.") var teacher: String?
    @Option(help: "α, the KL term's share of the loss, in [0, 1] (default \(FinetuneOptions.distillationDefaults.weight) with --teacher).") var distillWeight: Double?
    @Option(help: "τ, the temperature of both distributions in the KL (default \(FinetuneOptions.distillationDefaults.temperature) with --teacher).") var distillTemperature: Double?
    @Option(help: "β: add β times the normalised MSE between the student's and the teacher's last hidden states (default \(FinetuneOptions.distillationDefaults.hidden) = off; needs equal widths).") var distillHidden: Double?

    // Bookkeeping
    @Option(help: "Evaluate on held-out data every N steps (default \(FinetuneOptions.defaults.evalEvery): before and after only).") var evalEvery: Int?
    @Option(help: "Held-out tokens per evaluation (default \(FinetuneOptions.defaults.evalTokens): all).") var evalTokens: Int?
    @Option(help: "Save a checkpoint every N steps (default \(FinetuneOptions.defaults.saveEvery): at the end and on Ctrl-C).") var saveEvery: Int?
    @Option(help: "Checkpoints kept (default \(FinetuneOptions.defaults.keep)).") var keep: Int?
    @OptionGroup var loading: LoadingOptions
    @OptionGroup var precision: ComputeOption
    @OptionGroup var merged: OutputDTypeOption
    @Flag(help: "Also write OUT/merged.gguf: the merged model as one GGUF file for llama.cpp and Ollama, in OUT/merged's dtype (see `prune export`).") var gguf = false
    @Flag(help: "Export the checkpoint with the lowest held-out loss (needs --eval-every).") var keepBest = false
    @Option(help: "Stop after N evaluations without a lower held-out loss (needs --eval-every).") var earlyStop: Int?
    @Option(help: "Continue the run in this output directory from its newest checkpoint.") var resume: String?

    func run() throws {
        let comm: Communicator
        do { comm = try Cluster.start() } catch { throw PruneError("mpirun", "\(error)") }
        try comm.endingTheJobOnFailure { try run(communicator: comm) }
    }

    func run(communicator comm: Communicator) throws {
        // Under mpirun rank 0 resolves the options (it alone reads OUT/config.json on --resume) and sends them.
        let options = comm.size == 1 ? try resolvedOptions() : try comm.broadcast(comm.isRoot ? try resolvedOptions() : nil)
        let stop = StopRequest()
        let interrupts = Self.watchInterrupts(stop)
        defer { interrupts.forEach { $0.cancel() } }
        let finetuner = Finetuner(options: options, parallelism: Parallelism.forRun(threads: options.threads), stop: stop,
                                  progress: ProgressPrinter().sink) {
            FileHandle.standardError.write(Data(($0 + "\n").utf8))
        }
        finetuner.communicator = comm
        if comm.size > 1 {
            finetuner.log("data parallel: \(comm.size) ranks × --batch-size \(options.batchSize) (global micro-batch \(comm.size * options.batchSize) windows)")
        }
        let result = try finetuner.run(resuming: resume != nil)
        comm.finalize()
        if result.ending == .interrupted { throw ExitCode(130) }
        guard comm.isRoot else { return }
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
        let layerCount = try LlamaConfig.load(URL(fileURLWithPath: o.model).appendingPathComponent("config.json")).numHiddenLayers
        let flags = givenFlags(except: ["model", "dataset", "output", "resume"])
        o = try o.applying(flags, layers: layerCount)
        if let initAdapter, resume == nil {
            let dir = URL(fileURLWithPath: initAdapter)
            try o.adopt(PEFTAdapter.readConfig(dir), from: dir.appendingPathComponent(PEFTAdapter.configFile), given: Set(flags.keys))
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

    /// Runs the command; every failure becomes one line on stderr and a non-zero exit.
    static func main() { ToolMain.run(Finetune.self) }
}

/// Training windows: FinetuneOptions' defaults.
enum TrainingWindows: WindowDefaults {
    static let contextHelp = "Tokens per window (default \(FinetuneOptions.defaults.context))."
    static let batchSizeHelp = "Windows per micro-batch (default \(FinetuneOptions.defaults.batchSize))."
}

// The choices of --schedule and --layer-dropout-shape are the library's enums, listed in --help as they are.
extension LearningRateSchedule.Shape: ExpressibleByArgument {}
extension LayerDropoutShape: ExpressibleByArgument {}
