// llama.cpp's names for the tensors of its `llama` architecture (gguf-py constants.py, MODEL_TENSOR → name), mapped
// from Hugging Face's names (WeightNames): the one place they are spelled.
import Checkpoint

/// GGUF tensor names of a Llama model.
public enum GGUFTensorNames {
    public static let tokenEmbedding = "token_embd.weight"
    public static let outputNorm = "output_norm.weight"
    /// The untied lm_head; a tied model has none and llama.cpp reuses token_embd.
    public static let output = "output.weight"
    /// llama3 RoPE's per-frequency divisors (D/2).
    public static let ropeFrequencies = "rope_freqs.weight"

    /// llama.cpp's stem for a projection: attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down.
    public static func stem(_ p: Projection) -> String {
        switch p {
        case .q: "attn_q"
        case .k: "attn_k"
        case .v: "attn_v"
        case .o: "attn_output"
        case .gate: "ffn_gate"
        case .up: "ffn_up"
        case .down: "ffn_down"
        }
    }

    /// e.g. blk.3.attn_q.weight
    public static func projection(_ p: Projection, layer i: Int) -> String { "blk.\(i).\(stem(p)).weight" }

    /// The GGUF name of a tensor CheckpointValidation expects (embedding, norms, projections and their biases,
    /// final norm, lm_head), or nil for any other name.
    public static func name(forHF hf: String) -> String? {
        switch hf {
        case WeightNames.embedding: return tokenEmbedding
        case WeightNames.finalNorm: return outputNorm
        case WeightNames.lmHead: return output
        default: break
        }
        guard let (i, rest) = WeightNames.splitLayer(hf) else { return nil }
        if rest == "input_layernorm.weight" { return "blk.\(i).attn_norm.weight" }
        if rest == "post_attention_layernorm.weight" { return "blk.\(i).ffn_norm.weight" }
        for p in Projection.allCases {
            for suffix in ["weight", "bias"] where rest == "\(p.module).\(p.rawValue).\(suffix)" {
                return "blk.\(i).\(stem(p)).\(suffix)"
            }
        }
        return nil
    }

    /// The projection a layer tensor's HF name belongs to (weight or bias), or nil.
    public static func projection(ofHF hf: String) -> Projection? {
        guard let (_, rest) = WeightNames.splitLayer(hf) else { return nil }
        return Projection.allCases.first { rest.hasPrefix("\($0.module).\($0.rawValue).") }
    }
}
