// What trains: LoRA adapters on chosen projections of chosen layers, full parameters of chosen layers plus
// the final norm and lm_head ("partial finetuning"), or both. Field names follow PEFT's LoraConfig where
// one exists (r, lora_alpha, target_modules, layers_to_transform).
import Checkpoint
import Support

/// LoRA adapters to attach.
public struct LoRASettings: Codable, Equatable, Sendable {
    /// Rank R, e.g. 8.
    public var rank: Int
    /// alpha; the update is scaled by alpha / R, e.g. 16.
    public var alpha: Float
    /// Projections that get an adapter, e.g. all seven.
    public var projections: [Projection]
    /// 0-based layers that get adapters; nil = every layer.
    public var layers: [Int]?
    /// Seed of A's Kaiming-uniform draw (B starts at zero), e.g. 0.
    public var seed: UInt64

    enum CodingKeys: String, CodingKey {
        case rank = "r", alpha = "lora_alpha", projections = "target_modules", layers = "layers_to_transform", seed
    }

    /// Defaults: all seven projections of every layer, seed 0.
    public init(rank: Int, alpha: Float, projections: [Projection] = Projection.allCases, layers: [Int]? = nil, seed: UInt64 = 0) {
        self.rank = rank
        self.alpha = alpha
        self.projections = projections
        self.layers = layers
        self.seed = seed
    }
}

/// The trainable part of a model.
public struct TrainingConfiguration: Codable, Equatable, Sendable {
    /// Adapters, or nil for none.
    public var lora: LoRASettings?
    /// 0-based layers whose every weight (projections, biases, both norms) trains.
    public var fullLayers: [Int]
    /// Whether the final RMSNorm's weight trains.
    public var trainsFinalNorm: Bool
    /// Whether lm_head trains; for tied embeddings that is the embedding matrix, in both of its uses.
    public var trainsLMHead: Bool

    /// Nothing trains unless asked.
    public init(lora: LoRASettings? = nil, fullLayers: [Int] = [], trainsFinalNorm: Bool = false, trainsLMHead: Bool = false) {
        self.lora = lora
        self.fullLayers = fullLayers
        self.trainsFinalNorm = trainsFinalNorm
        self.trainsLMHead = trainsLMHead
    }

    /// LoRA only.
    public static func lora(_ settings: LoRASettings) -> TrainingConfiguration {
        TrainingConfiguration(lora: settings)
    }

    /// Partial finetuning: the last `k` of `layers` layers in full, plus the final norm and lm_head.
    public static func partial(lastLayers k: Int, of layers: Int) -> TrainingConfiguration {
        TrainingConfiguration(fullLayers: Array(max(0, layers - k)..<layers), trainsFinalNorm: true, trainsLMHead: true)
    }

    /// Throws when a layer index or the rank does not fit a model of `layers` layers.
    public func validate(layers: Int) throws {
        for l in fullLayers + (lora?.layers ?? []) where l < 0 || l >= layers {
            throw PruneError("training configuration", "layer \(l) outside 0…\(layers - 1)")
        }
        if let lora {
            if lora.rank < 1 { throw PruneError("training configuration", "LoRA rank \(lora.rank) must be at least 1") }
            if lora.projections.isEmpty { throw PruneError("training configuration", "LoRA has no target projections") }
        }
    }
}
