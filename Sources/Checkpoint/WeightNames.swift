// Tensor names exactly as Hugging Face's LlamaForCausalLM writes them: the one place they are spelled.

/// The seven projections of a Llama block, in HF's names.
public enum Projection: String, CaseIterable, Codable, Sendable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
    case gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// "self_attn" or "mlp".
    public var module: String {
        switch self {
        case .q, .k, .v, .o: "self_attn"
        case .gate, .up, .down: "mlp"
        }
    }

    /// Parses "q", "q_proj", "gate", … ; nil if unknown.
    public init?(name: String) {
        if let p = Projection(rawValue: name) { self = p; return }
        if let p = Projection(rawValue: name + "_proj") { self = p; return }
        return nil
    }
}

/// HF tensor names of a Llama checkpoint.
public enum WeightNames {
    public static let embedding = "model.embed_tokens.weight"
    public static let finalNorm = "model.norm.weight"
    public static let lmHead = "lm_head.weight"

    /// "model.layers.{i}."
    public static func layerPrefix(_ i: Int) -> String { "model.layers.\(i)." }

    /// e.g. model.layers.3.self_attn.q_proj.weight
    public static func projection(_ p: Projection, layer i: Int) -> String { "\(layerPrefix(i))\(p.module).\(p.rawValue).weight" }
    /// e.g. model.layers.3.self_attn.q_proj.bias
    public static func projectionBias(_ p: Projection, layer i: Int) -> String { "\(layerPrefix(i))\(p.module).\(p.rawValue).bias" }
    public static func inputNorm(layer i: Int) -> String { "\(layerPrefix(i))input_layernorm.weight" }
    public static func postAttentionNorm(layer i: Int) -> String { "\(layerPrefix(i))post_attention_layernorm.weight" }

    /// The layer index of a "model.layers.{i}.…" name and the rest after the index, or nil.
    public static func splitLayer(_ name: String) -> (layer: Int, rest: String)? {
        let prefix = "model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let tail = name.dropFirst(prefix.count)
        guard let dot = tail.firstIndex(of: "."), let i = Int(tail[..<dot]) else { return nil }
        return (i, String(tail[tail.index(after: dot)...]))
    }

    /// PEFT's name for a LoRA matrix: base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight
    public static func peftLoRA(_ p: Projection, layer i: Int, isA: Bool) -> String {
        "base_model.model.\(layerPrefix(i))\(p.module).\(p.rawValue).lora_\(isA ? "A" : "B").weight"
    }
}
