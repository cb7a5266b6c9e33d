// Everything that defines a finetuning run, resolved (defaults filled in), saved as OUT/config.json and
// compared on --resume: a run resumes only under the options it was started with, except those that do not
// change what it computes (where it writes, how often it logs, evaluates and saves, threads).
import Foundation
import Llama
import Checkpoint
import Jobs
import Support
import Tensor
import Training

/// A finetuning run's resolved configuration. JSON keys are the command-line flag names.
public struct FinetuneOptions: Codable, Equatable, Sendable {
    // Model and data
    /// Checkpoint directory.
    public var model: String
    /// Training data: .txt, JSONL {"text"} / {"input_ids"} / {"prompt","completion"} / {"messages"}.
    public var dataset: String
    /// Held-out data; nil: every 20th record (or window) of the training data.
    public var valid: String?
    /// Output directory.
    public var output: String
    /// Tokens per window, e.g. 256.
    public var context: Int = 256
    /// Documents joined with EOS and cut into windows (false: one sample per window, padded or truncated).
    public var packing: Bool = true

    // What trains
    /// LoRA adapters on `targets` of `loraLayers`.
    public var lora: Bool = false
    public var rank: Int = 8
    public var alpha: Double = 16
    public var dropout: Double = 0
    public var targets: [Projection] = Projection.allCases
    /// 0-based layers that get adapters; nil = all.
    public var loraLayers: [Int]?
    /// Layers trained in full ("last:3" resolved to indices).
    public var trainLayers: [Int] = []
    /// lm_head (the embedding when tied) and the final norm train.
    public var trainLMHead: Bool = false
    /// A PEFT adapter to start from; its r, alpha, targets, layers and dropout are the run's unless flags give them.
    public var initAdapter: String?
    /// Use --init-adapter even when it records another base.
    public var force: Bool = false

    // Optimizer and schedule
    public var lr: Double = 2e-4
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    public var weightDecay: Double = 0
    /// Decay norms and biases too (torch's AdamW over every parameter); false follows HF Trainer.
    public var decayNormsAndBiases: Bool = false
    public var schedule: LearningRateSchedule.Shape = .cosine
    public var warmupSteps: Int = 0
    /// Gradient clipping by global norm; 0 = off.
    public var maxGradNorm: Double = 1
    public var batchSize: Int = 4
    public var gradAccum: Int = 1
    /// Optimizer steps; nil: `epochs` passes over the data.
    public var steps: Int?
    public var epochs: Int = 1
    public var seed: UInt64 = 42
    public var shuffle: Bool = true
    public var gradientCheckpointing: Bool = false

    // LayerSkip
    /// Train every layer's exit (final norm + lm_head on its output) with the weights of the paper.
    public var earlyExitLoss: Bool = false
    /// S, how much the intermediate exits weigh.
    public var earlyExitScale: Double = 1
    /// none, rotational:R or gradual.
    public var earlyExitCurriculum: String = "none"
    /// P, the last layer's dropout rate (0: off); earlier layers get less (exponential in depth).
    public var layerDropout: Double = 0
    /// exponential, linear or uniform rates over depth.
    public var layerDropoutShape: LayerDropoutShape = .exponential
    /// constant, or linear (P ramps up from 0 over the run).
    public var layerDropoutSchedule: String = "constant"

    // Distillation
    /// The checkpoint the student learns from (the original model, run in its stored dtype); nil: no distillation.
    public var teacher: String?
    /// α ∈ [0, 1], the KL term's share of the loss (1 − α is the cross-entropy's); nil without a teacher,
    /// `distillationDefaults.weight` with one unless given.
    public var distillWeight: Double?
    /// τ > 0, the temperature both distributions are softened by inside the KL; nil without a teacher,
    /// `distillationDefaults.temperature` with one unless given.
    public var distillTemperature: Double?
    /// β ≥ 0, the weight of the normalised MSE between the two models' last hidden states (0: off); nil without a
    /// teacher, `distillationDefaults.hidden` with one unless given.
    public var distillHidden: Double?

    // Bookkeeping (may change on resume)
    /// Evaluate every N steps (0: before and after only).
    public var evalEvery: Int = 0
    /// Held-out tokens per evaluation (0: all).
    public var evalTokens: Int = 0
    /// Save a checkpoint every N steps (0: at the end only).
    public var saveEvery: Int = 0
    /// Checkpoints kept.
    public var keep: Int = 2
    public var threads: Int?
    /// How the base's 16-bit matrices are held: "stored" (default; mapped, widened inside the GEMMs) or "f32".
    public var weightsDType: String?
    /// How the frozen projections and the lm_head (student's and teacher's) multiply: f32 (exact) or bf16 (oneDNN).
    public var compute: ComputePrecision = .f32
    /// Dtype of the merged export: nil keeps the base's.
    public var dtype: String?
    /// Also write the merged model as OUT/merged.gguf, one file for llama.cpp and the tools built on it.
    public var gguf: Bool = false
    /// Export the checkpoint with the lowest held-out loss instead of the last.
    public var keepBest: Bool = false
    /// Stop after this many evaluations without a lower held-out loss (0: never).
    public var earlyStop: Int = 0

    enum CodingKeys: String, CodingKey {
        case model, dataset, valid, output = "o", context, packing, lora, rank, alpha, dropout, targets
        case loraLayers = "lora-layers", trainLayers = "train-layers", trainLMHead = "train-lm-head", initAdapter = "init-adapter", force
        case lr, beta1, beta2, eps, weightDecay = "weight-decay", decayNormsAndBiases = "decay-norms-and-biases", schedule
        case warmupSteps = "warmup-steps", maxGradNorm = "max-grad-norm", batchSize = "batch-size", gradAccum = "grad-accum"
        case steps, epochs, seed, shuffle, gradientCheckpointing = "gradient-checkpointing"
        case earlyExitLoss = "early-exit-loss", earlyExitScale = "early-exit-scale", earlyExitCurriculum = "early-exit-curriculum"
        case layerDropout = "layer-dropout", layerDropoutShape = "layer-dropout-shape", layerDropoutSchedule = "layer-dropout-schedule"
        case evalEvery = "eval-every", evalTokens = "eval-tokens", saveEvery = "save-every", keep, threads, dtype, gguf, weightsDType = "weights-dtype", compute
        case keepBest = "keep-best", earlyStop = "early-stop"
        case teacher, distillWeight = "distill-weight", distillTemperature = "distill-temperature", distillHidden = "distill-hidden"
    }

    /// Flags that may differ between a run and its resumption: they change where and how often it reports, not
    /// what it computes.
    public static let resumableChanges: Set<String> = ["o", "eval-every", "eval-tokens", "save-every", "keep", "threads", "dtype", "gguf", "weights-dtype",
                                                        "steps", "force", "keep-best", "early-stop"]

    public init(model: String, dataset: String, output: String) {
        self.model = model
        self.dataset = dataset
        self.output = output
    }

    /// Every setting at its default (model, dataset and output empty): what a flag left out means. The distillation
    /// settings are nil here, as without a teacher; a teacher's are `distillationDefaults`.
    public static let defaults = FinetuneOptions(model: "", dataset: "", output: "")

    /// α, τ and β of a teacher given without them. α = 0.5 weighs the labels and the teacher equally, as torchtune's
    /// KD recipes do (kd_ratio 0.5). τ = 2 rather than the τ = 1 of torchtune and Minitron, which distil over long
    /// runs on large corpora: healing a cut model is a few hundred steps on a small domain set, and the softened
    /// teacher (DistilBERT's τ = 2) passes on how it ranks the tokens it does not pick, which its top token all but
    /// hides at τ = 1; the τ² factor keeps the KL's gradient on the cross-entropy's scale, so α means the same at any
    /// τ. β = 0: the hidden-state term is opt-in (it needs the two models' widths equal).
    public static let distillationDefaults = (weight: 0.5, temperature: 2.0, hidden: 0.0)

    /// These options with the flags a command line gave on top. `flags` maps a setting's key here, which is its flag's
    /// name ("lr", "lora-layers"; `--no-shuffle` is "shuffle": false), to the value given. Layer lists and targets may
    /// be given as typed ("last:3", "q,v"): they are resolved here, against the model's `layers`. --dtype is kept by
    /// its canonical name (f32, not float32), so that equal settings compare equal.
    public func applying(_ flags: [String: any Encodable], layers: Int) throws -> FinetuneOptions {
        var settings = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as? [String: Any] ?? [:]
        for (flag, value) in flags {
            guard let key = CodingKeys(stringValue: flag) else { throw PruneError("--\(flag)", "is not a finetune setting") }
            switch (key, value) {
            case (.loraLayers, let text as String), (.trainLayers, let text as String):
                settings[flag] = try Self.layers(text, of: layers, option: "--\(flag)")
            case (.targets, let text as String):
                settings[flag] = try Self.targets(text).map(\.rawValue)
            default:
                settings[flag] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value), options: .fragmentsAllowed)
            }
        }
        var options: FinetuneOptions
        do {
            options = try JSONDecoder().decode(FinetuneOptions.self, from: JSONSerialization.data(withJSONObject: settings))
        } catch {
            throw PruneError("finetune flags", JSONFile.problem(error))
        }
        options.dtype = try options.dtype.map { try SafetensorsDType.output($0).outputName ?? $0 }
        return options
    }

    /// With a teacher, its α, τ and β left unset take `distillationDefaults` (Finetuner does this once), so that the
    /// saved options and a resume's comparison hold the values the run used. Without one they stay as given (validate
    /// refuses any).
    mutating func resolveDistillationDefaults() {
        guard teacher != nil else { return }
        let d = Self.distillationDefaults
        distillWeight = distillWeight ?? d.weight
        distillTemperature = distillTemperature ?? d.temperature
        distillHidden = distillHidden ?? d.hidden
    }

    /// OUT/config.json, where a run keeps its options for --resume.
    public static func savedFile(in output: URL) -> URL { output.appendingPathComponent("config.json") }

    /// The options a run saved in `output`; a file that is not a run's is refused in one line naming the key at fault.
    /// A run saved by an earlier build lacks the settings added since (e.g. "gguf"): those take their defaults, which
    /// are what that build did; the run's identity (model, dataset, o) must be there.
    public static func saved(in output: URL) throws -> FinetuneOptions {
        let file = savedFile(in: output), kind = "a finetune run's config.json (--resume takes the output directory of an earlier run)"
        guard let data = FileManager.default.contents(atPath: file.path) else {
            return try JSONFile.read(FinetuneOptions.self, from: file, kind: kind)   // its one-line "not found" / "cannot read"
        }
        guard var saved = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let defaults = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Self.defaults)) as? [String: Any],
              [CodingKeys.model, .dataset, .output].allSatisfy({ saved[$0.stringValue] != nil }) else {
            return try JSONFile.decode(FinetuneOptions.self, from: data, file: file, kind: kind)
        }
        saved.merge(defaults) { kept, _ in kept }
        return try JSONFile.decode(FinetuneOptions.self, from: JSONSerialization.data(withJSONObject: saved), file: file, kind: kind)
    }

    /// The trainable part as the library takes it.
    public var trainingConfiguration: TrainingConfiguration {
        TrainingConfiguration(
            lora: lora ? LoRASettings(rank: rank, alpha: Float(alpha), projections: targets, layers: loraLayers, seed: seed) : nil,
            fullLayers: trainLayers, trainsFinalNorm: trainLMHead, trainsLMHead: trainLMHead)
    }

    /// Refuses settings that cannot run, naming the flag.
    public func validate(layers: Int) throws {
        func bad(_ flag: String, _ problem: String) -> PruneError { PruneError("--\(flag)", problem) }
        guard lora || !trainLayers.isEmpty || trainLMHead else {
            throw bad("lora", "nothing to train: give --lora, --train-layers or --train-lm-head")
        }
        if lora {
            guard rank >= 1 else { throw bad("rank", "must be at least 1, got \(rank)") }
            guard alpha > 0, alpha.isFinite else { throw bad("alpha", "must be positive, got \(alpha)") }
            guard dropout >= 0 && dropout < 1 else { throw bad("dropout", "must be in [0, 1), got \(dropout)") }
            guard !targets.isEmpty else { throw bad("targets", "no projection to adapt") }
        }
        for l in (loraLayers ?? []) + trainLayers where l < 0 || l >= layers {
            throw bad(trainLayers.contains(l) ? "train-layers" : "lora-layers", "layer \(l) outside 0…\(layers - 1)")
        }
        guard context >= 2 else { throw bad("context", "must be at least 2, got \(context)") }
        guard lr > 0, lr.isFinite else { throw bad("lr", "must be positive, got \(lr)") }
        guard beta1 >= 0 && beta1 < 1 else { throw bad("beta1", "must be in [0, 1), got \(beta1)") }
        guard beta2 >= 0 && beta2 < 1 else { throw bad("beta2", "must be in [0, 1), got \(beta2)") }
        guard eps > 0 else { throw bad("eps", "must be positive, got \(eps)") }
        guard weightDecay >= 0 else { throw bad("weight-decay", "must be ≥ 0, got \(weightDecay)") }
        guard warmupSteps >= 0 else { throw bad("warmup-steps", "must be ≥ 0, got \(warmupSteps)") }
        guard maxGradNorm >= 0 else { throw bad("max-grad-norm", "must be ≥ 0 (0 = off), got \(maxGradNorm)") }
        guard batchSize >= 1 else { throw bad("batch-size", "must be at least 1, got \(batchSize)") }
        guard gradAccum >= 1 else { throw bad("grad-accum", "must be at least 1, got \(gradAccum)") }
        if let steps { guard steps >= 1 else { throw bad("steps", "must be at least 1, got \(steps)") } }
        guard epochs >= 1 else { throw bad("epochs", "must be at least 1, got \(epochs)") }
        guard evalEvery >= 0 else { throw bad("eval-every", "must be ≥ 0, got \(evalEvery)") }
        guard evalTokens >= 0 else { throw bad("eval-tokens", "must be ≥ 0, got \(evalTokens)") }
        guard saveEvery >= 0 else { throw bad("save-every", "must be ≥ 0, got \(saveEvery)") }
        guard keep >= 1 else { throw bad("keep", "must be at least 1, got \(keep)") }
        guard earlyStop >= 0 else { throw bad("early-stop", "must be ≥ 0, got \(earlyStop)") }
        if (keepBest || earlyStop > 0) && evalEvery == 0 {
            throw bad(keepBest ? "keep-best" : "early-stop", "needs evaluations during training: give --eval-every N")
        }
        guard earlyExitScale >= 0, earlyExitScale.isFinite else { throw bad("early-exit-scale", "must be ≥ 0, got \(earlyExitScale)") }
        guard EarlyExitCurriculum(argument: earlyExitCurriculum) != nil else {
            throw bad("early-exit-curriculum", "\"\(earlyExitCurriculum)\" is not none, rotational:R or gradual")
        }
        guard layerDropout >= 0 && layerDropout < 1 else { throw bad("layer-dropout", "must be in [0, 1), got \(layerDropout)") }
        guard ["constant", "linear"].contains(layerDropoutSchedule) else {
            throw bad("layer-dropout-schedule", "\"\(layerDropoutSchedule)\" is not constant or linear")
        }
        if let problem = distillationProblem() { throw bad(problem.flag, problem.problem) }
        try Parallelism.check(threads: threads)
        if let dtype { _ = try SafetensorsDType.output(dtype) }
        if let weightsDType { guard WeightsDType(rawValue: weightsDType) != nil else { throw bad("weights-dtype", "\(weightsDType) is not stored or f32") } }
    }

    /// What is wrong with the distillation settings, naming the flag ("distill-weight"); nil when they can run. A
    /// teacher that is the output directory, or inside it, is refused: the run rewrites it while the teacher is mapped.
    public func distillationProblem() -> (flag: String, problem: String)? {
        guard let teacher else {
            let given = [("distill-weight", distillWeight), ("distill-temperature", distillTemperature), ("distill-hidden", distillHidden)]
            return given.first { $0.1 != nil }.map { ($0.0, "needs a teacher (the model to distil from)") }
        }
        let teacherURL = URL(fileURLWithPath: teacher), outputURL = URL(fileURLWithPath: output)
        if teacherURL.resolvedPath == outputURL.resolvedPath || teacherURL.isInside(outputURL) {
            return ("teacher", "\(teacher) is inside the output directory \(output), which the run writes; give the original model")
        }
        if let a = distillWeight, !(a >= 0 && a <= 1) { return ("distill-weight", "must be in [0, 1], got \(a)") }
        if let t = distillTemperature, !(t > 0 && t.isFinite) { return ("distill-temperature", "must be positive, got \(t)") }
        if let b = distillHidden, !(b >= 0 && b.isFinite) { return ("distill-hidden", "must be ≥ 0 (0: off), got \(b)") }
        return nil
    }

    /// With --init-adapter, what PEFT takes from adapter_config.json: r, lora_alpha, target_modules, layers_to_transform
    /// and lora_dropout become this run's --rank, --alpha, --targets, --lora-layers and --dropout, and LoRA trains.
    /// `given` holds the flags the user wrote (their names without dashes); one that disagrees with the adapter is
    /// refused naming both values, rather than training an adapter other than the one asked for.
    public mutating func adopt(_ adapter: PEFTAdapterConfig, from file: URL, given: Set<String>) throws {
        func check<T: Equatable>(_ flag: String, _ mine: T, _ theirs: T, _ text: (T) -> String) throws -> T {
            if given.contains(flag) && mine != theirs {
                throw PruneError(file: file, "has \(PEFTAdapterConfig.key(forFlag: flag)) \(text(theirs)) but --\(flag) \(text(mine)) was given; "
                                 + "drop the flag to train the adapter as it is")
            }
            return theirs
        }
        lora = true
        rank = try check("rank", rank, adapter.rank) { "\($0)" }
        alpha = try check("alpha", Float(alpha), adapter.alpha) { "\($0)" }.asDouble
        dropout = try check("dropout", Float(dropout), adapter.dropout) { "\($0)" }.asDouble
        targets = try check("targets", targets, adapter.targets) { $0.map(\.rawValue).joined(separator: ",") }
        loraLayers = try check("lora-layers", loraLayers, adapter.layers) { $0.map { $0.map(String.init).joined(separator: ",") } ?? "all" }
    }

    /// The flags whose values differ from `other`'s, except those a resumed run may change.
    public func runChangingDifferences(from other: FinetuneOptions) throws -> [String] {
        let a = try JSONSerialization.jsonObject(with: JSONEncoder.sortedLine.encode(self)) as? NSDictionary ?? [:]
        let b = try JSONSerialization.jsonObject(with: JSONEncoder.sortedLine.encode(other)) as? NSDictionary ?? [:]
        let keys = Set(a.allKeys.compactMap { $0 as? String }).union(b.allKeys.compactMap { $0 as? String })
        return keys.subtracting(Self.resumableChanges).filter { key in
            switch (a[key], b[key]) {
            case (nil, nil): return false
            case (let x?, let y?): return (x as? NSObject)?.isEqual(y) != true
            default: return true
            }
        }.sorted()
    }

    /// Parses --targets: "all", or projections separated by commas (q, k, v, o, gate, up, down, or q_proj and so on).
    public static func targets(_ text: String) throws -> [Projection] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if names == ["all"] { return Projection.allCases }
        return try names.map { name in
            guard let projection = Projection(name: name) else {
                throw PruneError("--targets", "\"\(name)\" is not one of q, k, v, o, gate, up, down")
            }
            return projection
        }
    }

    /// Parses "last:3" (the last three of `layers`) or a layer list such as "20-27" or "3,5" (LayerSelection);
    /// `option` names the flag or recipe key in errors.
    public static func layers(_ text: String, of layers: Int, option: String) throws -> [Int] {
        if text.hasPrefix("last:") {
            guard let k = Int(text.dropFirst(5)), k >= 1, k <= layers else {
                throw PruneError(option, "\"\(text)\": last:K needs K in 1…\(layers)")
            }
            return Array((layers - k)..<layers)
        }
        return try LayerSelection(parsing: text, option: option).layers
    }
}

private extension Float {
    /// The Double a Float holds, printed as the Float was (0.05, not 0.05000000074505806).
    var asDouble: Double { Double("\(self)") ?? Double(self) }
}
