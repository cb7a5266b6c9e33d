// The general.* and llama.* keys of a GGUF model file, from config.json, exactly as llama.cpp's `llama` architecture
// reads them (src/llama-model.cpp, gguf-py constants.py Keys) and convert_hf_to_gguf.py writes them. RoPE scaling:
// linear → rope.scaling.type/factor; llama3 → no key but a rope_freqs tensor of per-frequency divisors; yarn →
// type, factor, original context, and attn_factor chosen so that llama.cpp's cos/sin factor (its default
// 1 + 0.1·ln(factor) times attn_factor) equals transformers' attention factor. What llama.cpp cannot reproduce —
// dynamic NTK scaling, yarn with other beta_fast/beta_slow than 32/1 (its llama architecture reads none) or
// without truncation — is refused in one line naming config.json.
// Dimension glossary: C model dim, H query heads, G kv heads, D head dim, F ffn dim, V vocab, L layers.
import Checkpoint
import Foundation
import Support

/// Metadata keys of GGUF files.
public enum GGUFMetadata {
    /// general.architecture of every file written here.
    public static let architecture = "llama"
    /// general.quantization_version (GGML_QNT_VERSION).
    public static let quantizationVersion: UInt32 = 2

    /// general.* and llama.* keys of a model with `config` (read from `configURL`, named in refusals), in the order
    /// convert_hf_to_gguf.py writes them.
    public static func model(_ c: LlamaConfig, name: String, fileType: GGUFFileType, configURL: URL) throws -> [(key: String, value: GGUFValue)] {
        var keys: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string(architecture)),
            ("general.type", .string("model")),
            ("general.name", .string(name)),
            ("llama.block_count", try u32(c.numHiddenLayers, "num_hidden_layers", configURL)),           // L
            ("llama.context_length", try u32(c.maxPositionEmbeddings, "max_position_embeddings", configURL)),
            ("llama.embedding_length", try u32(c.hiddenSize, "hidden_size", configURL)),                 // C
            ("llama.feed_forward_length", try u32(c.intermediateSize, "intermediate_size", configURL)),  // F
            ("llama.attention.head_count", try u32(c.numAttentionHeads, "num_attention_heads", configURL)),   // H
            ("llama.attention.head_count_kv", try u32(c.numKeyValueHeads, "num_key_value_heads", configURL)), // G
        ]
        keys += try ropeScaling(c, configURL)
        keys += [
            ("llama.rope.freq_base", .float32(Float(c.ropeTheta))),
            ("llama.attention.layer_norm_rms_epsilon", .float32(Float(c.rmsNormEps))),
            ("llama.attention.key_length", try u32(c.headDim, "head_dim", configURL)),                  // D
            ("llama.attention.value_length", try u32(c.headDim, "head_dim", configURL)),
            ("general.file_type", .uint32(fileType.code)),
            ("llama.vocab_size", try u32(c.vocabSize, "vocab_size", configURL)),                        // V
            ("llama.rope.dimension_count", try u32(c.headDim, "head_dim", configURL)),
            ("general.quantization_version", .uint32(quantizationVersion)),
        ]
        return keys
    }

    /// The keys of a LoRA adapter file for llama.cpp (src/llama-adapter.cpp): general.type adapter, adapter.type lora,
    /// adapter.lora.alpha (llama.cpp scales B·A by alpha / r, r read from each A's shape).
    public static func adapter(name: String, alpha: Float, fileType: GGUFFileType) -> [(key: String, value: GGUFValue)] {
        [("general.architecture", .string(architecture)), ("general.type", .string("adapter")), ("general.name", .string(name)),
         ("adapter.type", .string("lora")), ("adapter.lora.alpha", .float32(alpha)),
         ("general.file_type", .uint32(fileType.code)), ("general.quantization_version", .uint32(quantizationVersion))]
    }

    /// llama3 RoPE's divisor of each frequency (D/2), as convert_hf_to_gguf.py computes rope_freqs: 1 for short
    /// wavelengths, `factor` for long ones, a smooth blend between; nil for other kinds.
    public static func ropeFrequencyDivisors(_ c: LlamaConfig) -> [Float]? {
        guard let s = c.ropeScaling, s.ropeType == "llama3", let factor = s.factor else { return nil }
        let d = Double(c.headDim)
        return (0..<c.headDim / 2).map { i in
            let smooth = c.llama3Smoothing(wavelength: 2 * Double.pi * pow(c.ropeTheta, Double(2 * i) / d))
            return Float(1 / ((1 - smooth) / factor + smooth))
        }
    }

    /// The rope.scaling.* keys, or the refusal of a kind llama.cpp cannot reproduce.
    static func ropeScaling(_ c: LlamaConfig, _ url: URL) throws -> [(key: String, value: GGUFValue)] {
        guard let s = c.ropeScaling else { return [] }
        switch s.ropeType {
        case "linear":
            return [("llama.rope.scaling.type", .string("linear")), ("llama.rope.scaling.factor", .float32(Float(s.factor ?? 1)))]
        case "llama3":
            return []  // the rope_freqs tensor carries it
        case "yarn":
            if let fast = s.betaFast, fast != 32 {
                throw PruneError(file: url, "yarn rope_scaling beta_fast \(fast) cannot be exported: llama.cpp's llama architecture uses 32")
            }
            if let slow = s.betaSlow, slow != 1 {
                throw PruneError(file: url, "yarn rope_scaling beta_slow \(slow) cannot be exported: llama.cpp's llama architecture uses 1")
            }
            if s.truncate == false {
                throw PruneError(file: url, "yarn rope_scaling truncate: false cannot be exported: llama.cpp always rounds the ramp bounds")
            }
            let factor = c.yarnFactor
            let llamaCppDefault = factor <= 1 ? 1 : 1 + 0.1 * log(factor)
            return [("llama.rope.scaling.type", .string("yarn")), ("llama.rope.scaling.factor", .float32(Float(factor))),
                    ("llama.rope.scaling.original_context_length",
                     try u32(s.originalMaxPositionEmbeddings ?? c.maxPositionEmbeddings, "original_max_position_embeddings", url)),
                    ("llama.rope.scaling.attn_factor", .float32(Float(c.ropeAttentionScaling / llamaCppDefault)))]
        default:
            throw PruneError(file: url, "rope_scaling type \"\(s.ropeType)\" cannot be exported: llama.cpp's llama architecture has no such scaling")
        }
    }

    static func u32(_ n: Int, _ key: String, _ url: URL) throws -> GGUFValue {
        guard let v = UInt32(exactly: n) else { throw PruneError(file: url, "\(key) \(n) does not fit GGUF's uint32") }
        return .uint32(v)
    }
}
