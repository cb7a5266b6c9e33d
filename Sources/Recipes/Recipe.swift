// A pruning study as data: which model, which data, how to choose and cut the layers, how to heal and what to
// report, read from a YAML recipe (Recipes/*.yaml) whose header comment is the command that runs it. Every key
// has a type and a default; an unknown key, a wrong type or a value the checks across keys refuse (validate) is one
// error naming the file, line and key (RecipeDecoder). Relative paths in the file are taken from the file's
// directory, so that a recipe runs the same from any directory; paths given as overrides on the command line are
// taken from the working directory, as typed. The resolved recipe (defaults filled in, paths absolute) is saved in
// the run directory and its parts feed the content hash of each stage (StageCache; paths themselves are not hashed,
// the files' bytes are).
import Foundation
import Checkpoint
import Finetuning
import Llama
import Support
import Tensor
import Training
import Yams

/// How the layers of a cut of n are chosen.
/// What a cut does to the kept layer before each removed block besides deleting it (`prune cut --replace`).
public enum CutRepairKind: String, Codable, CaseIterable, Sendable {
    /// ReplaceMe's least-squares linear map, estimated on the calibration data, folded into its down_proj.
    case replaceme
    /// LaCo: the block's parameter differences merged into it.
    case laco
}

public enum LayerStrategy: String, Codable, CaseIterable, Sendable {
    /// The contiguous block of n with the smallest last-token angular distance between its input and output (Gromov et al.).
    case angular
    /// The n layers with the lowest Block Influence, not necessarily contiguous (ShortGPT).
    case bi
    /// The last n layers before the final one ("Reassessing Layer Pruning").
    case last
    /// The contiguous block of n whose removal gives the lowest calibration loss (every candidate measured).
    case loss
    /// Exactly `cut.layers`.
    case layers
}

/// A whole pruning study.
public struct Recipe: Codable, Equatable, Sendable {
    // Model
    /// Checkpoint directory of the model to prune.
    public var model: String
    /// Run directory: every artefact of the study goes here.
    public var output: String
    /// Worker threads (nil: all cores).
    public var threads: Int?
    /// How the frozen projections and the lm_head multiply in every stage (analysis, evaluation, healing): f32 (nil, the
    /// default) or bf16 (`--compute bf16`).
    public var compute: ComputePrecision?

    // Data
    public struct DataSettings: Codable, Equatable, Sendable {
        /// Calibration data for the analysis and the `loss` strategy.
        public var calibration: String
        /// Healing data (needed when `heal` is on).
        public var train: String?
        /// Held-out data for evaluation and the healing's held-out loss.
        public var valid: String
    }
    public var data: DataSettings

    public struct AnalyzeSettings: RecipeSection, Equatable, Sendable {
        /// Calibration records.
        public var samples = 64
        /// Tokens per record.
        public var context = 256
        public var batchSize = 4
        /// Also measure every layer's exit (final norm + lm_head on h_l): the early-exit curve of the report.
        public var earlyExit = false
        enum CodingKeys: String, CodingKey { case samples, context, batchSize = "batch_size", earlyExit = "early_exit" }
    }
    public var analyze = AnalyzeSettings()

    public struct CutSettings: RecipeSection, Equatable, Sendable {
        /// n, the layers to drop (not needed for `layers`).
        public var count: Int?
        /// Instead of `count`: this fraction of the layers, rounded (0.25 of 30 → 8).
        public var fraction: Double?
        /// The strategies compared (the first is the study's result: its cut is healed, exported and marked).
        public var strategies: [LayerStrategy] = [.angular]
        /// For `layers`: the layers to drop, 0-based inclusive ("11-18").
        public var layers: String?
        /// Let a strategy choose layer 0 (a cut of the first layer is usually catastrophic).
        public var allowFirstLayer = false
        /// Let `layers` drop layer 0, the last layer or more than half of the layers (CutDamageGuard refuses them otherwise).
        public var force = false
        /// Store the cut weights as f32, bf16 or f16 (nil: as the model has them).
        public var dtype: String?
        /// Also repair the layer before each removed block (nil: delete only).
        public var replace: CutRepairKind?
        enum CodingKeys: String, CodingKey { case count, fraction, strategies, layers, allowFirstLayer = "allow_first_layer", force, dtype, replace }
    }
    public var cut = CutSettings()

    public struct EvaluateSettings: RecipeSection, Equatable, Sendable {
        /// Tokens per window.
        public var context = 256
        /// Tokens between window starts (nil: context).
        public var stride: Int?
        public var batchSize = 4
        /// Also measure KL(original ‖ model) and top-1 agreement with the original.
        public var reference = true
        /// A multiple-choice task (JSONL, `prune eval --task`) every model is also scored on: acc and acc_norm.
        public var task: String?
        enum CodingKeys: String, CodingKey { case context, stride, batchSize = "batch_size", reference, task }
    }
    public var evaluate = EvaluateSettings()

    public struct HealSettings: RecipeSection, Equatable, Sendable {
        /// Whether the cut models are healed at all.
        public var enabled = true
        /// lora or partial (full finetuning of `trainLayers`, and lm_head with `trainLMHead`).
        public enum Method: String, Codable, CaseIterable, Sendable { case lora, partial }
        public var method: Method = .lora
        /// Heal every strategy's cut with the same budget (false: only the first strategy's).
        public var all = true
        public var steps = 100
        public var lr = 2e-4
        public var warmupSteps = 0
        public var batchSize = 4
        public var gradAccum = 1
        public var context = 256
        public var rank = 8
        public var alpha = 16.0
        /// Layers trained in full for `partial`, e.g. "last:3" or "20-22" (of the cut model).
        public var trainLayers: String?
        public var trainLMHead = false
        public var evalEvery = 0
        /// Held-out tokens per evaluation during healing (0: all).
        public var evalTokens = 0
        public var seed: UInt64 = 42
        /// Distil from this model while healing: `original` (the recipe's model) or a checkpoint directory; nil: not.
        public var teacher: String?
        /// α, τ and β of the distillation (nil: finetune's defaults, FinetuneOptions.distillationDefaults).
        public var distillWeight: Double?
        public var distillTemperature: Double?
        public var distillHidden: Double?
        /// `teacher`'s value that names the recipe's own model.
        public static let originalTeacher = "original"
        enum CodingKeys: String, CodingKey {
            case enabled, method, all, steps, lr, warmupSteps = "warmup_steps", batchSize = "batch_size", gradAccum = "grad_accum", context
            case rank, alpha, trainLayers = "train_layers", trainLMHead = "train_lm_head", evalEvery = "eval_every", evalTokens = "eval_tokens", seed
            case teacher, distillWeight = "distill_weight", distillTemperature = "distill_temperature", distillHidden = "distill_hidden"
        }
    }
    public var heal = HealSettings()

    public struct ExportSettings: RecipeSection, Equatable, Sendable {
        /// Write the study's final model (the first strategy's, healed when healing ran) to OUT/final.
        public var enabled = true
        /// f32, bf16 or f16 (nil: as the model has them).
        public var dtype: String?
    }
    public var export = ExportSettings()

    public struct ReportSettings: RecipeSection, Equatable, Sendable {
        /// Prompts continued greedily by the full, cut and healed models.
        public var prompts: [String] = []
        public var maxTokens = 32
        enum CodingKeys: String, CodingKey { case prompts, maxTokens = "max_tokens" }
    }
    public var report = ReportSettings()

    /// A LayerSkip study instead of a cut (Elhoushi et al. 2024): continual training of the whole model with the
    /// early-exit loss and layer dropout, on `heal`'s budget, then each model's exits and self-speculative speed.
    public struct LayerSkipSettings: RecipeSection, Equatable, Sendable {
        /// full: every layer and lm_head (the paper's setting); lora: adapters on every projection.
        public enum Method: String, Codable, CaseIterable, Sendable { case full, lora }
        /// The trainings, the first exported to OUT/final.
        public var methods: [Method] = [.full, .lora]
        /// lr of the lora training (heal.lr is the full one's).
        public var loraLR = 1e-3
        public var earlyExitScale = 1.0
        /// none, rotational:R or gradual.
        public var curriculum = "rotational:8"
        /// The last layer's dropout rate P.
        public var layerDropout = 0.1
        /// Also a plain cross-entropy finetune with the first method's budget (the last-layer quality bar).
        public var baseline = true
        /// Speed is measured on the first `prompts` records of data.valid, cut to `prompt_tokens`, each continued by
        /// `max_tokens` greedy tokens, plainly and with exit:auto.
        public var prompts = 8
        public var promptTokens = 32
        public var maxTokens = 128
        /// The draft's reduced vocabulary (most frequent tokens of data.train), stored with OUT/final; 0: the full head.
        public var draftVocabulary = 4096
        enum CodingKeys: String, CodingKey {
            case methods, loraLR = "lora_lr", earlyExitScale = "early_exit_scale", curriculum, layerDropout = "layer_dropout"
            case baseline, prompts, promptTokens = "prompt_tokens", maxTokens = "max_tokens", draftVocabulary = "draft_vocabulary"
        }
    }
    public var layerskip: LayerSkipSettings?

    public init(model: String, output: String, data: DataSettings) {
        self.model = model
        self.output = output
        self.data = data
    }
}

extension Recipe.DataSettings {
    /// `calibration` defaults to `valid`.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let calibration = try c.decodeIfPresent(String.self, forKey: .calibration)
        train = try c.decodeIfPresent(String.self, forKey: .train)
        valid = try c.decode(String.self, forKey: .valid)
        self.calibration = calibration ?? valid
    }
}

extension Recipe.CutSettings {
    /// `strategy: x` is short for `strategies: [x]`.
    private enum ShortKeys: String, CodingKey { case strategy }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        count = try c.decodeIfPresent(Int.self, forKey: .count)
        fraction = try c.decodeIfPresent(Double.self, forKey: .fraction)
        let one = try decoder.container(keyedBy: ShortKeys.self).decodeIfPresent(LayerStrategy.self, forKey: .strategy)
        let many = try c.decode([LayerStrategy].self, forKey: .strategies)
        strategies = one.map { [$0] } ?? many
        layers = try c.decodeIfPresent(String.self, forKey: .layers)
        allowFirstLayer = try c.decode(Bool.self, forKey: .allowFirstLayer)
        force = try c.decode(Bool.self, forKey: .force)
        dtype = try c.decodeIfPresent(String.self, forKey: .dtype)
        replace = try c.decodeIfPresent(CutRepairKind.self, forKey: .replace)
    }
}

extension Recipe {
    /// Reads and validates a recipe file, applying `overrides` ("heal.steps=50") first. Its relative paths are taken
    /// from the file's directory, those of `overrides` from the working directory.
    public static func load(_ url: URL, displayPath: String? = nil, overrides: [String] = []) throws -> Recipe {
        let shown = displayPath ?? url.path
        guard let data = FileManager.default.contents(atPath: url.path) else { throw PruneError(shown, "cannot read the recipe") }
        guard let text = String(data: data, encoding: .utf8) else { throw PruneError(shown, "is not UTF-8 text") }
        return try parse(text, file: shown, overrides: overrides, directory: url.absoluteURL.deletingLastPathComponent())
    }

    /// Reads and validates a recipe's text; `file` names it in errors, `directory` is where its relative paths start
    /// (overrides' start in the working directory).
    public static func parse(_ text: String, file: String, overrides: [String] = [],
                             directory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) throws -> Recipe {
        var document = try RecipeDocument(text: text, file: file)
        for o in overrides { try document.applyOverride(o) }
        var recipe = try RecipeDecoder.decode(Recipe.self, from: document)
        try recipe.validate(document)

        let workingDirectory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        func path(_ key: String, _ value: String) -> String {
            let expanded = (value as NSString).expandingTildeInPath
            let base = document.isOverridden(key) ? workingDirectory : directory
            return (expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : base.appendingPathComponent(expanded)).standardizedFileURL.path
        }
        recipe.model = path("model", recipe.model)
        recipe.output = path("output", recipe.output)
        recipe.data.calibration = path(document.node(at: "data.calibration") == nil ? "data.valid" : "data.calibration", recipe.data.calibration)
        recipe.data.train = recipe.data.train.map { path("data.train", $0) }
        recipe.data.valid = path("data.valid", recipe.data.valid)
        recipe.evaluate.task = recipe.evaluate.task.map { path("evaluate.task", $0) }
        recipe.heal.teacher = recipe.heal.teacher.map { $0 == HealSettings.originalTeacher ? $0 : path("heal.teacher", $0) }
        try recipe.checkDistillation(document)
        return recipe
    }

    /// The teacher's checkpoint directory of the healing (nil: no distillation).
    public var healTeacher: String? {
        heal.teacher.map { $0 == HealSettings.originalTeacher ? model : $0 }
    }

    /// heal's distillation keys through finetune's own check (paths resolved), refused at the key's line.
    private func checkDistillation(_ document: RecipeDocument) throws {
        if layerskip != nil && heal.teacher != nil { throw document.error("heal.teacher", "a layerskip study does not distil: drop it") }
        var o = FinetuneOptions(model: model, dataset: "", output: output)
        (o.teacher, o.distillWeight, o.distillTemperature, o.distillHidden) = (healTeacher, heal.distillWeight, heal.distillTemperature, heal.distillHidden)
        if let problem = o.distillationProblem() {
            throw document.error("heal." + problem.flag.replacingOccurrences(of: "-", with: "_"), problem.problem)
        }
    }

    /// The checks of ranges and across keys, each refusal at the line of the key it names; dtypes are stored by their
    /// canonical name, so that "bfloat16" and "bf16" make the same stage keys.
    private mutating func validate(_ document: RecipeDocument) throws {
        func fail(_ key: String, _ problem: String) -> PruneError { document.error(key, problem) }
        func atLeast(_ low: Int, _ values: KeyValuePairs<String, Int>) throws {
            for (key, value) in values where value < low { throw fail(key, "must be at least \(low), got \(value)") }
        }
        // Through the one layer-list parser and the one dtype parser, refused at the key's line.
        func layerList(_ key: String, _ text: String) throws {
            do { _ = try LayerSelection(parsing: text, option: key) } catch let e as PruneError { throw fail(key, e.problem) }
        }
        func dtype(_ key: String, _ text: String?) throws -> String? {
            do { return try text.map { try SafetensorsDType.output($0, key).outputName ?? $0 } } catch let e as PruneError { throw fail(key, e.problem) }
        }

        try atLeast(1, ["threads": threads ?? 1, "analyze.samples": analyze.samples, "analyze.batch_size": analyze.batchSize,
                        "evaluate.batch_size": evaluate.batchSize, "heal.steps": heal.steps, "heal.batch_size": heal.batchSize,
                        "heal.grad_accum": heal.gradAccum, "heal.rank": heal.rank, "report.max_tokens": report.maxTokens])
        try atLeast(2, ["analyze.context": analyze.context, "evaluate.context": evaluate.context, "heal.context": heal.context])
        try atLeast(0, ["heal.warmup_steps": heal.warmupSteps, "heal.eval_every": heal.evalEvery, "heal.eval_tokens": heal.evalTokens])

        if let s = layerskip {
            guard !s.methods.isEmpty, Set(s.methods).count == s.methods.count else { throw fail("layerskip.methods", "must name full and/or lora, each once") }
            guard s.loraLR > 0, s.loraLR.isFinite else { throw fail("layerskip.lora_lr", "must be positive, got \(s.loraLR)") }
            guard s.earlyExitScale >= 0, s.earlyExitScale.isFinite else { throw fail("layerskip.early_exit_scale", "must be ≥ 0, got \(s.earlyExitScale)") }
            guard EarlyExitCurriculum(argument: s.curriculum) != nil else {
                throw fail("layerskip.curriculum", "\"\(s.curriculum)\" is not none, rotational:R or gradual")
            }
            guard s.layerDropout >= 0 && s.layerDropout < 1 else { throw fail("layerskip.layer_dropout", "must be in [0, 1), got \(s.layerDropout)") }
            try atLeast(1, ["layerskip.prompts": s.prompts, "layerskip.prompt_tokens": s.promptTokens, "layerskip.max_tokens": s.maxTokens])
            guard s.draftVocabulary >= 0 else { throw fail("layerskip.draft_vocabulary", "must be ≥ 0 (0: the full head), got \(s.draftVocabulary)") }
            guard data.train != nil else { throw fail("data.train", "is required by layerskip (its training data)") }
            if document.node(at: "cut") != nil { throw fail("cut", "a layerskip study trains the whole model: drop cut (or layerskip)") }
        }

        if document.node(at: "cut") != nil {
            if cut.count != nil && cut.fraction != nil { throw fail("cut.fraction", "give count or fraction, not both") }
            if let f = cut.fraction, !(f > 0 && f < 1) { throw fail("cut.fraction", "must be between 0 and 1, got \(f)") }
            if document.node(at: "cut.strategy") != nil && document.node(at: "cut.strategies") != nil {
                throw fail("cut.strategies", "give strategy or strategies, not both")
            }
            guard !cut.strategies.isEmpty else { throw fail("cut.strategies", "is empty") }
            guard Set(cut.strategies).count == cut.strategies.count else { throw fail("cut.strategies", "names a strategy twice") }
            cut.dtype = try dtype("cut.dtype", cut.dtype)
            if cut.strategies.contains(.layers) {
                guard let layers = cut.layers else { throw fail("cut.layers", "is required by strategy layers (e.g. layers: 11-18)") }
                try layerList("cut.layers", layers)
            }
            if let chooser = cut.strategies.first(where: { $0 != .layers }) {
                guard cut.count != nil || cut.fraction != nil else { throw fail("cut.count", "is required by strategy \(chooser.rawValue) (or fraction)") }
                if let count = cut.count { try atLeast(1, ["cut.count": count]) }
            }
        } else if layerskip == nil {
            throw fail("cut", "is required (count and strategy, or layers), or layerskip")
        }

        if let s = evaluate.stride, s < 1 || s > evaluate.context { throw fail("evaluate.stride", "must be in 1…context, got \(s)") }
        guard heal.lr > 0, heal.lr.isFinite else { throw fail("heal.lr", "must be positive, got \(heal.lr)") }
        guard heal.alpha > 0 else { throw fail("heal.alpha", "must be positive, got \(heal.alpha)") }
        if heal.method == .partial && heal.trainLayers == nil && !heal.trainLMHead {
            throw fail("heal.method", "partial needs train_layers (e.g. last:3) or train_lm_head: true")
        }
        if let t = heal.trainLayers, !t.hasPrefix("last:") { try layerList("heal.train_layers", t) }
        if heal.enabled && data.train == nil { throw fail("data.train", "is required when heal is enabled (or set heal.enabled: false)") }

        export.dtype = try dtype("export.dtype", export.dtype)
    }

    /// The resolved recipe as YAML (defaults filled in), for the run directory.
    /// A layerskip study has no cut: its resolved form leaves the section out, so that it reads back.
    public func resolvedYAML() throws -> String {
        let yaml = try YAMLEncoder().encode(self)
        guard layerskip != nil, let node = try Yams.compose(yaml: yaml), case .mapping(var m) = node else { return yaml }
        m["cut"] = nil
        return try Yams.serialize(node: .mapping(m))
    }
}
