// config.json of a Hugging Face Llama checkpoint, decoded with HF's own key names. Defaults are those
// of transformers' LlamaConfig when a key is absent.
import Foundation
import Support

/// RoPE frequency scaling (config.json `rope_scaling`, or transformers 5's `rope_parameters`).
public struct RopeScaling: Codable, Equatable, Sendable {
    /// "default", "linear", "dynamic", "llama3" or "yarn" (others are refused when config.json is read).
    public var ropeType: String
    /// Scaling factor (linear, dynamic, llama3), e.g. 8.0 for Llama 3.1.
    public var factor: Double?
    /// llama3: below this wavelength ratio frequencies are kept, e.g. 1.0.
    public var lowFreqFactor: Double?
    /// llama3: above this ratio frequencies are divided by `factor`, e.g. 4.0.
    public var highFreqFactor: Double?
    /// llama3/dynamic: context length of pretraining, e.g. 8192.
    public var originalMaxPositionEmbeddings: Int?
    /// rope_theta when given inside rope_parameters (transformers ≥ 5).
    public var ropeTheta: Double?
    /// yarn: scale applied to cos/sin (default from `factor`, `mscale`, `mscale_all_dim`).
    public var attentionFactor: Double?
    /// yarn: rotation counts bounding the interpolation ramp (defaults 32 and 1).
    public var betaFast: Double?
    public var betaSlow: Double?
    /// yarn: terms of the default attention factor.
    public var mscale: Double?
    public var mscaleAllDim: Double?
    /// yarn: whether the ramp bounds are rounded outwards (default true).
    public var truncate: Bool?

    enum CodingKeys: String, CodingKey {
        case ropeType = "rope_type", type, factor
        case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
        case ropeTheta = "rope_theta"
        case attentionFactor = "attention_factor", betaFast = "beta_fast", betaSlow = "beta_slow"
        case mscale, mscaleAllDim = "mscale_all_dim", truncate
    }

    public init(ropeType: String, factor: Double? = nil, lowFreqFactor: Double? = nil, highFreqFactor: Double? = nil,
                originalMaxPositionEmbeddings: Int? = nil, ropeTheta: Double? = nil) {
        self.ropeType = ropeType
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
        self.ropeTheta = ropeTheta
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Older files say "type", newer ones "rope_type".
        ropeType = try c.decodeIfPresent(String.self, forKey: .ropeType) ?? c.decodeIfPresent(String.self, forKey: .type) ?? "default"
        factor = try c.decodeIfPresent(Double.self, forKey: .factor)
        lowFreqFactor = try c.decodeIfPresent(Double.self, forKey: .lowFreqFactor)
        highFreqFactor = try c.decodeIfPresent(Double.self, forKey: .highFreqFactor)
        originalMaxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .originalMaxPositionEmbeddings)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
        attentionFactor = try c.decodeIfPresent(Double.self, forKey: .attentionFactor)
        betaFast = try c.decodeIfPresent(Double.self, forKey: .betaFast)
        betaSlow = try c.decodeIfPresent(Double.self, forKey: .betaSlow)
        mscale = try c.decodeIfPresent(Double.self, forKey: .mscale)
        mscaleAllDim = try c.decodeIfPresent(Double.self, forKey: .mscaleAllDim)
        truncate = try c.decodeIfPresent(Bool.self, forKey: .truncate)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ropeType, forKey: .ropeType)
        try c.encodeIfPresent(factor, forKey: .factor)
        try c.encodeIfPresent(lowFreqFactor, forKey: .lowFreqFactor)
        try c.encodeIfPresent(highFreqFactor, forKey: .highFreqFactor)
        try c.encodeIfPresent(originalMaxPositionEmbeddings, forKey: .originalMaxPositionEmbeddings)
        try c.encodeIfPresent(ropeTheta, forKey: .ropeTheta)
        try c.encodeIfPresent(attentionFactor, forKey: .attentionFactor)
        try c.encodeIfPresent(betaFast, forKey: .betaFast)
        try c.encodeIfPresent(betaSlow, forKey: .betaSlow)
        try c.encodeIfPresent(mscale, forKey: .mscale)
        try c.encodeIfPresent(mscaleAllDim, forKey: .mscaleAllDim)
        try c.encodeIfPresent(truncate, forKey: .truncate)
    }
}

/// An id or a list of ids (`eos_token_id` may be either).
public enum TokenIDs: Codable, Equatable, Sendable {
    case one(Int)
    case many([Int])

    public var all: [Int] {
        switch self {
        case .one(let i): [i]
        case .many(let l): l
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) { self = .one(i) } else { self = .many(try c.decode([Int].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .one(let i): try c.encode(i)
        case .many(let l): try c.encode(l)
        }
    }
}

/// The Llama architecture hyper-parameters (HF config.json names).
public struct LlamaConfig: Codable, Equatable, Sendable {
    public var architectures: [String]?       // ["LlamaForCausalLM"]
    public var modelType: String?             // "llama"
    public var hiddenSize: Int                // C, e.g. 576
    public var intermediateSize: Int          // F, e.g. 1536
    public var numHiddenLayers: Int           // L, e.g. 30
    public var numAttentionHeads: Int         // H, e.g. 9
    public var numKeyValueHeads: Int          // G, e.g. 3 (defaults to H)
    public var headDim: Int                   // D, e.g. 64 (defaults to C / H)
    public var rmsNormEps: Double             // e.g. 1e-5
    public var ropeTheta: Double              // e.g. 10000
    public var ropeScaling: RopeScaling?      // nil = plain RoPE
    public var vocabSize: Int                 // V, e.g. 49152
    public var tieWordEmbeddings: Bool        // lm_head shares embed_tokens
    public var maxPositionEmbeddings: Int     // e.g. 2048
    public var bosTokenID: Int?               // e.g. 1
    public var eosTokenID: TokenIDs?          // e.g. 2 or [128001, 128009]
    public var padTokenID: Int?
    public var hiddenAct: String              // must be "silu"
    public var attentionBias: Bool            // q/k/v/o carry biases
    public var mlpBias: Bool                  // gate/up/down carry biases
    public var torchDtype: String?            // "float32", "bfloat16", "float16"

    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", ropeScaling = "rope_scaling", ropeParameters = "rope_parameters"
        case vocabSize = "vocab_size", tieWordEmbeddings = "tie_word_embeddings"
        case maxPositionEmbeddings = "max_position_embeddings", bosTokenID = "bos_token_id", eosTokenID = "eos_token_id"
        case padTokenID = "pad_token_id", hiddenAct = "hidden_act", attentionBias = "attention_bias", mlpBias = "mlp_bias"
        case torchDtype = "torch_dtype", dtype
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
    }

    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                numKeyValueHeads: Int? = nil, headDim: Int? = nil, rmsNormEps: Double = 1e-5, ropeTheta: Double = 10000,
                ropeScaling: RopeScaling? = nil, vocabSize: Int, tieWordEmbeddings: Bool = false,
                maxPositionEmbeddings: Int = 2048, bosTokenID: Int? = 1, eosTokenID: TokenIDs? = .one(2),
                attentionBias: Bool = false, mlpBias: Bool = false, torchDtype: String? = "float32") {
        architectures = ["LlamaForCausalLM"]
        modelType = "llama"
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? hiddenSize / numAttentionHeads
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.vocabSize = vocabSize
        self.tieWordEmbeddings = tieWordEmbeddings
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        padTokenID = nil
        hiddenAct = "silu"
        self.attentionBias = attentionBias
        self.mlpBias = mlpBias
        self.torchDtype = torchDtype
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        if let given = try c.decodeIfPresent(Int.self, forKey: .headDim) {
            headDim = given
        } else {
            // Without head_dim, transformers takes C / H: the heads must divide the hidden size.
            guard numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
                throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.numAttentionHeads], debugDescription:
                    "num_attention_heads \(numAttentionHeads) does not divide hidden_size \(hiddenSize) (and there is no head_dim)"))
            }
            headDim = hiddenSize / numAttentionHeads
        }
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6
        // transformers ≥ 5 folds rope_theta and the scaling into rope_parameters.
        let params = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeParameters)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? params?.ropeTheta ?? 10000
        var scaling = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeScaling) ?? params
        if scaling?.ropeType == "default" { scaling = nil }
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        // As transformers does: llama3 and yarn take the pretraining length from a top-level
        // original_max_position_embeddings, else from max_position_embeddings.
        if let kind = scaling?.ropeType, kind == "llama3" || kind == "yarn" {
            let topLevel = try c.decodeIfPresent(Int.self, forKey: .originalMaxPositionEmbeddings)
            if let topLevel { scaling?.originalMaxPositionEmbeddings = topLevel }
            if scaling?.originalMaxPositionEmbeddings == nil { scaling?.originalMaxPositionEmbeddings = maxPositionEmbeddings }
        }
        ropeScaling = scaling
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        eosTokenID = try c.decodeIfPresent(TokenIDs.self, forKey: .eosTokenID)
        padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? false
        torchDtype = try c.decodeIfPresent(String.self, forKey: .torchDtype) ?? c.decodeIfPresent(String.self, forKey: .dtype)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(architectures, forKey: .architectures)
        try c.encodeIfPresent(modelType, forKey: .modelType)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encodeIfPresent(ropeScaling, forKey: .ropeScaling)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encodeIfPresent(bosTokenID, forKey: .bosTokenID)
        try c.encodeIfPresent(eosTokenID, forKey: .eosTokenID)
        try c.encodeIfPresent(padTokenID, forKey: .padTokenID)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encode(mlpBias, forKey: .mlpBias)
        try c.encodeIfPresent(torchDtype, forKey: .torchDtype)
    }

    /// Reads and validates config.json: a non-Llama architecture or inconsistent sizes are errors.
    public static func load(_ url: URL) throws -> LlamaConfig {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw PruneError(file: url, FileManager.default.fileExists(atPath: url.path) ? "cannot read" : "file not found")
        }
        return try parse(data, file: url)
    }

    /// Decodes and validates the bytes of a config.json (`url` names it in errors).
    public static func parse(_ data: Data, file url: URL) throws -> LlamaConfig {
        let config = try JSONFile.decode(LlamaConfig.self, from: data, file: url, kind: "a valid config.json")
        try config.validate(url)
        return config
    }

    /// Checks the architecture and the head arithmetic.
    public func validate(_ url: URL) throws {
        if let mt = modelType, mt != "llama" {
            throw PruneError(file: url, "model_type \"\(mt)\" is not a Llama architecture (only \"llama\" / LlamaForCausalLM is supported)")
        }
        if let arch = architectures?.first, arch != "LlamaForCausalLM", arch != "LlamaModel" {
            throw PruneError(file: url, "architecture \"\(arch)\" is not supported (only LlamaForCausalLM)")
        }
        guard hiddenAct == "silu" else { throw PruneError(file: url, "hidden_act \"\(hiddenAct)\" is not supported (Llama uses silu)") }
        guard hiddenSize > 0, intermediateSize > 0, numHiddenLayers > 0, numAttentionHeads > 0, numKeyValueHeads > 0, headDim > 0, vocabSize > 0 else {
            throw PruneError(file: url, "sizes must be positive")
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw PruneError(file: url, "num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(numKeyValueHeads)")
        }
        guard headDim % 2 == 0 else { throw PruneError(file: url, "head_dim \(headDim) must be even for RoPE") }
        guard rmsNormEps.isFinite, rmsNormEps > 0 else { throw PruneError(file: url, "rms_norm_eps \(rmsNormEps) must be a positive finite number") }
        guard ropeTheta.isFinite, ropeTheta > 0 else { throw PruneError(file: url, "rope_theta \(ropeTheta) must be a positive finite number") }
        guard maxPositionEmbeddings > 0 else { throw PruneError(file: url, "max_position_embeddings \(maxPositionEmbeddings) must be positive") }
        if let s = ropeScaling, !["linear", "dynamic", "llama3", "yarn"].contains(s.ropeType) {
            throw PruneError(file: url, "rope_scaling type \"\(s.ropeType)\" is not supported (supported: default, linear, dynamic, llama3, yarn)")
        }
        if let s = ropeScaling, s.ropeType == "llama3",
           s.factor == nil || s.lowFreqFactor == nil || s.highFreqFactor == nil || s.originalMaxPositionEmbeddings == nil {
            throw PruneError(file: url, "llama3 rope_scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings")
        }
        if let s = ropeScaling, s.ropeType == "linear" || s.ropeType == "dynamic", s.factor == nil {
            throw PruneError(file: url, "\(s.ropeType) rope_scaling needs factor")
        }
        if let s = ropeScaling { try Self.checkRopeNumbers(s, url) }
    }

    /// Every number of a rope_scaling block finite, and those that divide or scale positive.
    static func checkRopeNumbers(_ s: RopeScaling, _ url: URL) throws {
        let positive: [(String, Double?)] = [("factor", s.factor), ("low_freq_factor", s.lowFreqFactor),
                                             ("high_freq_factor", s.highFreqFactor), ("rope_theta", s.ropeTheta),
                                             ("attention_factor", s.attentionFactor)]
        for (key, value) in positive {
            if let value, !(value.isFinite && value > 0) {
                throw PruneError(file: url, "rope_scaling \(key) \(value) must be a positive finite number")
            }
        }
        for (key, value) in [("beta_fast", s.betaFast), ("beta_slow", s.betaSlow), ("mscale", s.mscale), ("mscale_all_dim", s.mscaleAllDim)] {
            if let value, !value.isFinite { throw PruneError(file: url, "rope_scaling \(key) \(value) must be finite") }
        }
        if let old = s.originalMaxPositionEmbeddings, old <= 0 {
            throw PruneError(file: url, "rope_scaling original_max_position_embeddings \(old) must be positive")
        }
        if s.ropeType == "llama3", let low = s.lowFreqFactor, let high = s.highFreqFactor, !(high > low) {
            throw PruneError(file: url, "llama3 rope_scaling needs high_freq_factor (\(high)) greater than low_freq_factor (\(low))")
        }
    }

    /// Query heads per kv head.
    public var groupSize: Int { numAttentionHeads / numKeyValueHeads }
    /// End-of-sequence ids (possibly several).
    public var eosTokenIDs: [Int] { eosTokenID?.all ?? [] }
}

extension LlamaConfig {
    /// yarn's scaling factor: rope_scaling.factor, else max_position_embeddings / original_max_position_embeddings.
    public var yarnFactor: Double {
        let original = Double(ropeScaling?.originalMaxPositionEmbeddings ?? maxPositionEmbeddings)
        return ropeScaling?.factor ?? Double(maxPositionEmbeddings) / original
    }

    /// llama3 RoPE's blend for a frequency of this wavelength: 1 keeps it (short wavelengths), 0 divides it by
    /// `factor` (long ones), a linear ramp in between (transformers' _compute_llama3_parameters); the frequency
    /// becomes (1 − s)·f/factor + s·f. Only for a validated llama3 config (its four numbers present).
    public func llama3Smoothing(wavelength: Double) -> Double {
        let s = ropeScaling, low = s?.lowFreqFactor ?? 1, high = s?.highFreqFactor ?? 4
        let old = Double(s?.originalMaxPositionEmbeddings ?? maxPositionEmbeddings)
        if wavelength < old / high { return 1 }
        if wavelength > old / low { return 0 }
        return (old / wavelength - low) / (high - low)
    }

    /// The factor on RoPE's cos and sin: yarn's attention factor (given, or 0.1·ln(factor)+1, with the mscale terms
    /// when both are given, as transformers computes it); 1 for every other kind.
    public var ropeAttentionScaling: Double {
        guard let s = ropeScaling, s.ropeType == "yarn" else { return 1 }
        if let a = s.attentionFactor { return a }
        func mscaleOf(_ scale: Double, _ m: Double) -> Double { scale <= 1 ? 1 : 0.1 * m * log(scale) + 1 }
        if let m = s.mscale, let all = s.mscaleAllDim, m != 0, all != 0 { return mscaleOf(yarnFactor, m) / mscaleOf(yarnFactor, all) }
        return mscaleOf(yarnFactor, 1)
    }
}
