// adapter_config.json of a PEFT LoRA adapter, as PEFT 0.21 writes it (every key of its LoraConfig, sorted,
// two-space indent) and as this toolkit can apply it: plain LoRA on the seven Llama projections, optionally
// on a subset of layers (layers_to_transform), scaled by alpha/r or, with use_rslora, alpha/√r. What would
// change the computation in a way we do not implement (DoRA, trained biases, modules_to_save, per-module
// rank or alpha patterns, fan_in_fan_out, layer replication, …) is refused with one line naming the key.
import Foundation
import Support

/// The settings of a PEFT LoRA adapter that decide what it computes.
public struct PEFTAdapterConfig: Equatable, Sendable {
    /// r, the rank R, e.g. 8.
    public var rank: Int
    /// lora_alpha, e.g. 16.
    public var alpha: Float
    /// lora_dropout, on the adapter's input while training, e.g. 0.05.
    public var dropout: Float
    /// target_modules: the projections adapted, in HF's short names (q_proj, …, down_proj).
    public var targets: [Projection]
    /// layers_to_transform: 0-based layers adapted, ascending; nil = every layer.
    public var layers: [Int]?
    /// use_rslora: scale by alpha/√r instead of alpha/r.
    public var useRSLoRA: Bool
    /// base_model_name_or_path, e.g. the checkpoint directory trained on.
    public var baseModel: String?

    public init(rank: Int, alpha: Float, dropout: Float = 0, targets: [Projection] = Projection.allCases,
                layers: [Int]? = nil, useRSLoRA: Bool = false, baseModel: String? = nil) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = Projection.allCases.filter(targets.contains)
        self.layers = layers.map { Array(Set($0)).sorted() }
        self.useRSLoRA = useRSLoRA
        self.baseModel = baseModel
    }

    /// The adapter_config.json key behind a finetune flag ("rank" → "r"), for messages.
    public static func key(forFlag flag: String) -> String {
        ["rank": "r", "alpha": "lora_alpha", "dropout": "lora_dropout", "targets": "target_modules",
         "lora-layers": "layers_to_transform"][flag] ?? flag
    }

    /// The factor of B·A: alpha/r, or alpha/√r with use_rslora.
    public var scale: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    /// Reads adapter_config.json's object; `url` names the file in refusals.
    public init(json c: [String: Any], url: URL) throws {
        func refuse(_ problem: String) -> PruneError { PruneError(file: url, problem) }
        func isSet(_ key: String) -> Bool {
            switch c[key] {
            case nil, is NSNull: return false
            case let n as NSNumber: return n.boolValue
            case let s as String: return !s.isEmpty
            case let a as [Any]: return !a.isEmpty
            case let d as [String: Any]: return !d.isEmpty
            default: return true
            }
        }
        guard (c["peft_type"] as? String) == "LORA" else {
            throw refuse("peft_type is \(c["peft_type"].map { "\($0)" } ?? "missing"); only LORA adapters are supported")
        }
        if let task = c["task_type"] as? String, task != "CAUSAL_LM" {
            throw refuse("task_type \"\(task)\" is not supported (CAUSAL_LM only)")
        }
        // Keys that change what the adapter computes, refused rather than ignored.
        let unsupported: [(String, String)] = [
            ("use_dora", "DoRA (use_dora: true) is not supported"),
            ("modules_to_save", "modules_to_save is not supported (only LoRA matrices can be applied)"),
            ("fan_in_fan_out", "fan_in_fan_out: true is not supported (Llama's projections are nn.Linear)"),
            ("lora_bias", "lora_bias: true is not supported"),
            ("rank_pattern", "rank_pattern (per-module ranks) is not supported"),
            ("alpha_pattern", "alpha_pattern (per-module alphas) is not supported"),
            ("layer_replication", "layer_replication is not supported"),
            ("target_parameters", "target_parameters is not supported"),
            ("trainable_token_indices", "trainable_token_indices is not supported"),
            ("use_qalora", "QALoRA (use_qalora: true) is not supported"),
            ("alora_invocation_tokens", "activated LoRA (alora_invocation_tokens) is not supported"),
            ("use_bdlora", "use_bdlora is not supported"),
            ("exclude_modules", "exclude_modules is not supported"),
        ]
        for (key, problem) in unsupported where isSet(key) { throw refuse(problem) }
        if let bias = c["bias"] as? String, bias != "none" {
            throw refuse("bias \"\(bias)\" is not supported (only \"none\")")
        }
        guard let r = (c["r"] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }), r >= 1 else {
            throw refuse("\"r\" is missing or not a positive integer")
        }
        guard let alpha = (c["lora_alpha"] as? NSNumber)?.floatValue, alpha.isFinite else {
            throw refuse("\"lora_alpha\" is missing or not a number")
        }
        let dropout = (c["lora_dropout"] as? NSNumber)?.floatValue ?? 0
        var targets: [Projection] = []
        switch c["target_modules"] {
        case let list as [Any]:
            for item in list {
                guard let name = item as? String, let p = Projection(rawValue: name) else {
                    throw refuse("target module \"\(item)\" is not one of \(Projection.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                targets.append(p)
            }
        case let name as String:
            // A single string is a regular expression in PEFT, except "all-linear".
            if name == "all-linear" { targets = Projection.allCases } else if let p = Projection(rawValue: name) { targets = [p] } else {
                throw refuse("target_modules \"\(name)\" (a regular expression) is not supported; list the projections")
            }
        default:
            throw refuse("\"target_modules\" is missing")
        }
        guard !targets.isEmpty else { throw refuse("\"target_modules\" is empty") }
        var layers: [Int]? = nil
        switch c["layers_to_transform"] {
        case nil, is NSNull: break
        case let n as NSNumber:
            guard let i = Int(exactly: n.doubleValue), i >= 0 else { throw refuse("layers_to_transform \(n) is not a layer index") }
            layers = [i]
        case let list as [Any]:
            layers = try list.map { item in
                guard let n = item as? NSNumber, let i = Int(exactly: n.doubleValue), i >= 0 else {
                    throw refuse("layers_to_transform entry \(item) is not a layer index")
                }
                return i
            }
        default:
            throw refuse("layers_to_transform is neither an index nor a list of indices")
        }
        self.init(rank: r, alpha: alpha, dropout: dropout, targets: targets, layers: layers,
                  useRSLoRA: (c["use_rslora"] as? NSNumber)?.boolValue ?? false, baseModel: c["base_model_name_or_path"] as? String)
    }

    /// The JSON object PEFT 0.21 writes for these settings: its LoraConfig's keys with their defaults.
    public var json: [String: Any] {
        let null = NSNull()
        // Whole alphas as integers, as PEFT writes lora_alpha=16.
        let alphaValue: NSNumber = alpha == alpha.rounded() && abs(alpha) < 1e9 ? NSNumber(value: Int(alpha)) : NSNumber(value: Double(alpha))
        return [
            "alora_invocation_tokens": null, "alpha_pattern": [String: Any](), "arrow_config": null,
            "auto_mapping": null, "base_model_name_or_path": baseModel.map { $0 as Any } ?? null, "bias": "none",
            "corda_config": null, "ensure_weight_tying": NSNumber(value: false), "eva_config": null,
            "exclude_modules": null, "fan_in_fan_out": NSNumber(value: false), "inference_mode": NSNumber(value: true),
            "init_lora_weights": NSNumber(value: true), "kasa_config": null, "layer_replication": null,
            "layers_pattern": null, "layers_to_transform": layers.map { $0.map { NSNumber(value: $0) } as Any } ?? null,
            "loftq_config": [String: Any](), "lora_alpha": alphaValue, "lora_bias": NSNumber(value: false),
            "lora_dropout": NSNumber(value: Double(dropout)), "lora_ga_config": null, "megatron_config": null,
            "megatron_core": "megatron.core", "modules_to_save": null, "monteclora_config": null, "peft_type": "LORA",
            "peft_version": "0.21.2", "qalora_group_size": NSNumber(value: 16), "r": NSNumber(value: rank),
            "rank_pattern": [String: Any](), "revision": null, "target_modules": targets.map(\.rawValue),
            "target_parameters": null, "task_type": "CAUSAL_LM", "trainable_token_indices": null, "use_bdlora": null,
            "use_dora": NSNumber(value: false), "use_qalora": NSNumber(value: false),
            "use_rslora": NSNumber(value: useRSLoRA), "velora_config": null,
        ]
    }
}
