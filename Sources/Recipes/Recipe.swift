// A pruning study as data: which model, which data, how to choose and cut the layers, how to heal and what to
// report, read from a YAML recipe (Recipes/*.yaml) whose header comment is the command that runs it. Every key
// has a type and a default; an unknown key or a wrong type is one error naming the file, line and key
// (RecipeReader). Relative paths in the file are taken from the file's directory, so that a recipe runs the same
// from any directory; paths given as overrides on the command line are taken from the working directory, as
// typed. The resolved recipe (defaults filled in, paths absolute) is saved in the run directory and its parts
// feed the content hash of each stage (StageCache; paths themselves are not hashed, the files' bytes are).
import Foundation
import Checkpoint
import Llama
import Support
import Surgery
import Yams

/// How the layers of a cut of n are chosen.
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

    public struct AnalyzeSettings: Codable, Equatable, Sendable {
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

    public struct CutSettings: Codable, Equatable, Sendable {
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
        enum CodingKeys: String, CodingKey { case count, fraction, strategies, layers, allowFirstLayer = "allow_first_layer", force, dtype }
    }
    public var cut = CutSettings()

    public struct EvaluateSettings: Codable, Equatable, Sendable {
        /// Tokens per window.
        public var context = 256
        /// Tokens between window starts (nil: context).
        public var stride: Int?
        public var batchSize = 4
        /// Also measure KL(original ‖ model) and top-1 agreement with the original.
        public var reference = true
        enum CodingKeys: String, CodingKey { case context, stride, batchSize = "batch_size", reference }
    }
    public var evaluate = EvaluateSettings()

    public struct HealSettings: Codable, Equatable, Sendable {
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
        enum CodingKeys: String, CodingKey {
            case enabled, method, all, steps, lr, warmupSteps = "warmup_steps", batchSize = "batch_size", gradAccum = "grad_accum", context
            case rank, alpha, trainLayers = "train_layers", trainLMHead = "train_lm_head", evalEvery = "eval_every", evalTokens = "eval_tokens", seed
        }
    }
    public var heal = HealSettings()

    public struct ExportSettings: Codable, Equatable, Sendable {
        /// Write the study's final model (the first strategy's, healed when healing ran) to OUT/final.
        public var enabled = true
        /// f32, bf16 or f16 (nil: as the model has them).
        public var dtype: String?
    }
    public var export = ExportSettings()

    /// A LayerSkip study instead of a cut (Elhoushi et al. 2024): continual training of the whole model with the
    /// early-exit loss and layer dropout, on `heal`'s budget, then each model's exits and self-speculative speed.
    public struct LayerSkipSettings: Codable, Equatable, Sendable {
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

    public struct ReportSettings: Codable, Equatable, Sendable {
        /// Prompts continued greedily by the full, cut and healed models.
        public var prompts: [String] = []
        public var maxTokens = 32
        enum CodingKeys: String, CodingKey { case prompts, maxTokens = "max_tokens" }
    }
    public var report = ReportSettings()

    public init(model: String, output: String, data: DataSettings) {
        self.model = model
        self.output = output
        self.data = data
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
        var doc = try RecipeDocument(text: text, file: file)
        for o in overrides { try doc.applyOverride(o) }
        let r = try doc.rootReader(keys: ["model", "output", "threads", "data", "analyze", "cut", "evaluate", "heal", "export", "report", "layerskip"])

        guard let d = try r.mapping("data", keys: ["calibration", "train", "valid"]) else { throw r.fail("data", "is required (calibration, valid, train)") }
        let valid = try d.requiredString("valid")
        var recipe = Recipe(model: try r.requiredString("model"), output: try r.requiredString("output"),
                            data: DataSettings(calibration: try d.string("calibration") ?? valid, train: try d.string("train"), valid: valid))
        let workingDirectory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        func path(_ key: String, _ value: String) -> String {
            let expanded = (value as NSString).expandingTildeInPath
            let base = doc.isOverridden(key) ? workingDirectory : directory
            return (expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : base.appendingPathComponent(expanded)).standardizedFileURL.path
        }
        recipe.model = path("model", recipe.model)
        recipe.output = path("output", recipe.output)
        recipe.data.calibration = path(d.node("calibration") == nil ? "data.valid" : "data.calibration", recipe.data.calibration)
        recipe.data.train = recipe.data.train.map { path("data.train", $0) }
        recipe.data.valid = path("data.valid", recipe.data.valid)
        recipe.threads = try r.int("threads")
        if let threads = recipe.threads, threads < 1 { throw r.fail("threads", "must be at least 1, got \(threads)") }

        if let a = try r.mapping("analyze", keys: ["samples", "context", "batch_size", "early_exit"]) {
            recipe.analyze.earlyExit = try a.bool("early_exit") ?? false
            recipe.analyze.samples = try a.int("samples") ?? recipe.analyze.samples
            recipe.analyze.context = try a.int("context") ?? recipe.analyze.context
            recipe.analyze.batchSize = try a.int("batch_size") ?? recipe.analyze.batchSize
            try positive(a, "samples", recipe.analyze.samples); try atLeast(a, "context", recipe.analyze.context, 2)
            try positive(a, "batch_size", recipe.analyze.batchSize)
        }

        let layerskipKeys = ["methods", "lora_lr", "early_exit_scale", "curriculum", "layer_dropout", "baseline", "prompts",
                             "prompt_tokens", "max_tokens", "draft_vocabulary"]
        if let l = try r.mapping("layerskip", keys: layerskipKeys) {
            var s = LayerSkipSettings()
            if let methods = try l.strings("methods") {
                s.methods = try methods.map { m in
                    guard let e = LayerSkipSettings.Method(rawValue: m) else { throw l.fail("methods", "\"\(m)\" is not full or lora") }
                    return e
                }
                guard !s.methods.isEmpty, Set(s.methods).count == s.methods.count else { throw l.fail("methods", "must name full and/or lora, each once") }
            }
            s.loraLR = try l.double("lora_lr") ?? s.loraLR
            s.earlyExitScale = try l.double("early_exit_scale") ?? s.earlyExitScale
            s.curriculum = try l.string("curriculum") ?? s.curriculum
            s.layerDropout = try l.double("layer_dropout") ?? s.layerDropout
            s.baseline = try l.bool("baseline") ?? s.baseline
            s.prompts = try l.int("prompts") ?? s.prompts
            s.promptTokens = try l.int("prompt_tokens") ?? s.promptTokens
            s.maxTokens = try l.int("max_tokens") ?? s.maxTokens
            s.draftVocabulary = try l.int("draft_vocabulary") ?? s.draftVocabulary
            guard s.loraLR > 0, s.loraLR.isFinite else { throw l.fail("lora_lr", "must be positive, got \(s.loraLR)") }
            guard s.earlyExitScale >= 0, s.earlyExitScale.isFinite else { throw l.fail("early_exit_scale", "must be ≥ 0, got \(s.earlyExitScale)") }
            guard EarlyExitCurriculum(argument: s.curriculum) != nil else { throw l.fail("curriculum", "\"\(s.curriculum)\" is not none, rotational:R or gradual") }
            guard s.layerDropout >= 0 && s.layerDropout < 1 else { throw l.fail("layer_dropout", "must be in [0, 1), got \(s.layerDropout)") }
            try positive(l, "prompts", s.prompts); try positive(l, "prompt_tokens", s.promptTokens); try positive(l, "max_tokens", s.maxTokens)
            guard s.draftVocabulary >= 0 else { throw l.fail("draft_vocabulary", "must be ≥ 0 (0: the full head), got \(s.draftVocabulary)") }
            guard recipe.data.train != nil else { throw d.fail("train", "is required by layerskip (its training data)") }
            if r.node("cut") != nil { throw r.fail("cut", "a layerskip study trains the whole model: drop cut (or layerskip)") }
            recipe.layerskip = s
        }

        if let c = try r.mapping("cut", keys: ["count", "fraction", "strategy", "strategies", "layers", "allow_first_layer", "force", "dtype"]) {
            try parseCut(c, into: &recipe)
        } else if recipe.layerskip == nil {
            throw r.fail("cut", "is required (count and strategy, or layers), or layerskip")
        }
        if let e = try r.mapping("evaluate", keys: ["context", "stride", "batch_size", "reference"]) {
            recipe.evaluate.context = try e.int("context") ?? recipe.evaluate.context
            recipe.evaluate.stride = try e.int("stride")
            recipe.evaluate.batchSize = try e.int("batch_size") ?? recipe.evaluate.batchSize
            recipe.evaluate.reference = try e.bool("reference") ?? recipe.evaluate.reference
            try atLeast(e, "context", recipe.evaluate.context, 2)
            if let s = recipe.evaluate.stride, s < 1 || s > recipe.evaluate.context { throw e.fail("stride", "must be in 1…context, got \(s)") }
            try positive(e, "batch_size", recipe.evaluate.batchSize)
        }

        let healKeys = ["enabled", "method", "all", "steps", "lr", "warmup_steps", "batch_size", "grad_accum", "context", "rank", "alpha",
                        "train_layers", "train_lm_head", "eval_every", "eval_tokens", "seed"]
        if let h = try r.mapping("heal", keys: healKeys) {
            var s = recipe.heal
            s.enabled = try h.bool("enabled") ?? s.enabled
            s.method = try h.choice("method", HealSettings.Method.self) ?? s.method
            s.all = try h.bool("all") ?? s.all
            s.steps = try h.int("steps") ?? s.steps
            s.lr = try h.double("lr") ?? s.lr
            s.warmupSteps = try h.int("warmup_steps") ?? s.warmupSteps
            s.batchSize = try h.int("batch_size") ?? s.batchSize
            s.gradAccum = try h.int("grad_accum") ?? s.gradAccum
            s.context = try h.int("context") ?? s.context
            s.rank = try h.int("rank") ?? s.rank
            s.alpha = try h.double("alpha") ?? s.alpha
            s.trainLayers = try h.string("train_layers") ?? h.int("train_layers").map(String.init)
            s.trainLMHead = try h.bool("train_lm_head") ?? s.trainLMHead
            s.evalEvery = try h.int("eval_every") ?? s.evalEvery
            s.evalTokens = try h.int("eval_tokens") ?? s.evalTokens
            if let seed = try h.int("seed") { guard seed >= 0 else { throw h.fail("seed", "must be ≥ 0") }; s.seed = UInt64(seed) }
            try positive(h, "steps", s.steps); try positive(h, "batch_size", s.batchSize); try positive(h, "grad_accum", s.gradAccum)
            try positive(h, "rank", s.rank); try atLeast(h, "context", s.context, 2)
            guard s.lr > 0, s.lr.isFinite else { throw h.fail("lr", "must be positive, got \(s.lr)") }
            guard s.alpha > 0 else { throw h.fail("alpha", "must be positive, got \(s.alpha)") }
            guard s.warmupSteps >= 0, s.evalEvery >= 0, s.evalTokens >= 0 else {
                throw h.fail(s.warmupSteps < 0 ? "warmup_steps" : s.evalEvery < 0 ? "eval_every" : "eval_tokens", "must be ≥ 0")
            }
            if s.method == .partial && s.trainLayers == nil && !s.trainLMHead {
                throw h.fail("method", "partial needs train_layers (e.g. last:3) or train_lm_head: true")
            }
            if let t = s.trainLayers, !t.hasPrefix("last:") {
                do { _ = try LayerSelection(parsing: t, option: "heal.train_layers") } catch let e as PruneError { throw h.fail("train_layers", e.problem) }
            }
            recipe.heal = s
        }
        if recipe.heal.enabled && recipe.data.train == nil { throw d.fail("train", "is required when heal is enabled (or set heal.enabled: false)") }

        if let x = try r.mapping("export", keys: ["enabled", "dtype"]) {
            recipe.export.enabled = try x.bool("enabled") ?? recipe.export.enabled
            recipe.export.dtype = try x.string("dtype")
            if let dtype = recipe.export.dtype { _ = try checkedDType(x, "dtype", dtype) }
        }
        if let p = try r.mapping("report", keys: ["prompts", "max_tokens"]) {
            recipe.report.prompts = try p.strings("prompts") ?? []
            recipe.report.maxTokens = try p.int("max_tokens") ?? recipe.report.maxTokens
            try positive(p, "max_tokens", recipe.report.maxTokens)
        }
        return recipe
    }

    /// The `cut` section.
    private static func parseCut(_ c: RecipeMapping, into recipe: inout Recipe) throws {
        recipe.cut.count = try c.int("count")
        recipe.cut.fraction = try c.double("fraction")
        if recipe.cut.count != nil && recipe.cut.fraction != nil { throw c.fail("fraction", "give count or fraction, not both") }
        if let f = recipe.cut.fraction, !(f > 0 && f < 1) { throw c.fail("fraction", "must be between 0 and 1, got \(f)") }
        if c.node("strategy") != nil && c.node("strategies") != nil { throw c.fail("strategies", "give strategy or strategies, not both") }
        if let one = try c.choice("strategy", LayerStrategy.self) { recipe.cut.strategies = [one] }
        if let many = try c.strings("strategies") {
            recipe.cut.strategies = try many.map { s in
                guard let e = LayerStrategy(rawValue: s) else {
                    throw c.fail("strategies", "\"\(s)\" is not one of \(LayerStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return e
            }
            guard !recipe.cut.strategies.isEmpty else { throw c.fail("strategies", "is empty") }
            guard Set(recipe.cut.strategies).count == recipe.cut.strategies.count else { throw c.fail("strategies", "names a strategy twice") }
        }
        recipe.cut.layers = try c.string("layers") ?? c.int("layers").map(String.init)
        recipe.cut.allowFirstLayer = try c.bool("allow_first_layer") ?? false
        recipe.cut.force = try c.bool("force") ?? false
        recipe.cut.dtype = try c.string("dtype")
        if let dtype = recipe.cut.dtype { _ = try checkedDType(c, "dtype", dtype) }
        if recipe.cut.strategies.contains(.layers) {
            guard let layers = recipe.cut.layers else { throw c.fail("layers", "is required by strategy layers (e.g. layers: 11-18)") }
            do { _ = try LayerSelection(parsing: layers, option: "cut.layers") } catch let e as PruneError { throw c.fail("layers", e.problem) }
        }
        if recipe.cut.strategies.contains(where: { $0 != .layers }) {
            guard recipe.cut.count != nil || recipe.cut.fraction != nil else {
                throw c.fail("count", "is required by strategy \(recipe.cut.strategies.first { $0 != .layers }!.rawValue) (or fraction)")
            }
            if let n = recipe.cut.count { try positive(c, "count", n) }
        }
    }

    private static func positive(_ m: RecipeMapping, _ key: String, _ value: Int) throws {
        try atLeast(m, key, value, 1)
    }

    private static func atLeast(_ m: RecipeMapping, _ key: String, _ value: Int, _ low: Int) throws {
        guard value >= low else { throw m.fail(key, "must be at least \(low), got \(value)") }
    }

    private static func checkedDType(_ m: RecipeMapping, _ key: String, _ value: String) throws -> String {
        // Stored by its canonical name, so that "bfloat16" and "bf16" make the same stage keys.
        guard let dtype = try? SafetensorsDType.output(value, key) else { throw m.fail(key, "\"\(value)\" is not one of f32, bf16, f16") }
        return dtype.outputName ?? value
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
