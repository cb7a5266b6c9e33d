// A PEFT LoRA adapter directory: adapter_config.json + adapter_model.safetensors with PEFT's tensor names
// (base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight; PEFT omits the adapter name
// "default" when saving, some tools keep it: ….lora_A.default.weight is read too). Reading takes any
// PEFT LoRA adapter of a Llama model, PEFT's own included; `validate(against:)` checks it fits a model
// (every tensor's layer exists, shapes match, every configured matrix is there), which is what refuses an
// adapter trained on a differently-cut model. Writing produces what PEFT 0.21's save_pretrained writes.
// Dimension glossary: C model dim, H query heads, G kv heads, D head dim, F ffn dim, R rank, L layers.
import Foundation
import Support
import Tensor

/// The LoRA matrices of one adapted projection, in PEFT's orientation.
public struct LoRAWeights {
    /// 0-based layer.
    public let layer: Int
    public let projection: Projection
    /// A (R, in).
    public let a: Tensor
    /// B (out, R).
    public let b: Tensor

    public init(layer: Int, projection: Projection, a: Tensor, b: Tensor) {
        self.layer = layer
        self.projection = projection
        self.a = a
        self.b = b
    }
}

/// A LoRA adapter in PEFT's format.
public struct PEFTAdapter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    /// adapter_config.json's settings.
    public var config: PEFTAdapterConfig
    /// The matrices, ordered by layer, then projection (Projection.allCases order).
    public var weights: [LoRAWeights]
    /// The base it was trained on, when the adapter records it (ours do; PEFT's do not).
    public var base: BaseFingerprint?

    public init(config: PEFTAdapterConfig, weights: [LoRAWeights]) {
        self.config = config
        let order = Dictionary(uniqueKeysWithValues: Projection.allCases.enumerated().map { ($1, $0) })
        self.weights = weights.sorted { ($0.layer, order[$0.projection, default: 0]) < ($1.layer, order[$1.projection, default: 0]) }
    }

    /// The matrices of one projection, if adapted.
    public func weights(layer: Int, projection: Projection) -> LoRAWeights? {
        weights.first { $0.layer == layer && $0.projection == projection }
    }

    // MARK: reading

    /// adapter_config.json of the adapter in `directory`, without its weights.
    public static func readConfig(_ directory: URL) throws -> PEFTAdapterConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PruneError(file: directory, "adapter directory not found")
        }
        let configURL = directory.appendingPathComponent(configFile)
        return try PEFTAdapterConfig(json: try ConfigJSON.read(configURL), url: configURL)
    }

    /// Reads `directory` (adapter_config.json + adapter_model.safetensors); tensors may be F32, F16, BF16.
    public static func read(_ directory: URL) throws -> PEFTAdapter {
        let config = try readConfig(directory)
        let weightsURL = directory.appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            let pickle = FileManager.default.fileExists(atPath: directory.appendingPathComponent("adapter_model.bin").path)
            throw PruneError(file: weightsURL, pickle ? "not found; only adapter_model.bin (a PyTorch pickle) is there; save the adapter with safe_serialization=True"
                                                      : "file not found")
        }
        let file = try SafetensorsFile(url: weightsURL)
        var a: [Key: Tensor] = [:], b: [Key: Tensor] = [:]
        for name in file.names {
            guard let (key, isA) = parse(name) else {
                throw PruneError(file: weightsURL, "tensor \"\(name)\" is not a LoRA matrix of a Llama projection (only lora_A/lora_B of q_proj … down_proj are supported)")
            }
            guard config.targets.contains(key.projection) else {
                throw PruneError(file: weightsURL, "tensor \"\(name)\" adapts \(key.projection.rawValue), which target_modules does not list")
            }
            if let layers = config.layers, !layers.contains(key.layer) {
                throw PruneError(file: weightsURL, "tensor \"\(name)\" is for layer \(key.layer), which layers_to_transform does not list")
            }
            let t = try file.tensor(name)
            guard t.shape.count == 2 else { throw PruneError(file: weightsURL, "tensor \"\(name)\" has shape \(t.shape); LoRA matrices are 2-D") }
            guard (isA ? a[key] : b[key]) == nil else {
                throw PruneError(file: weightsURL, "tensor \"\(name)\" appears twice (with and without the adapter name)")
            }
            if isA { a[key] = t } else { b[key] = t }
        }
        var weights: [LoRAWeights] = []
        for key in Set(a.keys).union(b.keys) {
            let name = WeightNames.peftLoRA(key.projection, layer: key.layer, isA: a[key] == nil)
            guard let ta = a[key], let tb = b[key] else { throw PruneError(file: weightsURL, "tensor \"\(name)\" is missing") }
            guard ta.shape[0] == config.rank, tb.shape[1] == config.rank else {
                throw PruneError(file: weightsURL, "tensors of \"\(WeightNames.projection(key.projection, layer: key.layer))\" have A \(ta.shape), B \(tb.shape); r = \(config.rank) needs A (\(config.rank), in) and B (out, \(config.rank))")
            }
            weights.append(LoRAWeights(layer: key.layer, projection: key.projection, a: ta, b: tb))
        }
        guard !weights.isEmpty else { throw PruneError(file: weightsURL, "holds no LoRA matrices") }
        var adapter = PEFTAdapter(config: config, weights: weights)
        if let recorded = file.metadata[BaseFingerprint.metadataKey] {
            do { adapter.base = try JSONDecoder().decode(BaseFingerprint.self, from: Data(recorded.utf8)) } catch {
                throw PruneError(file: weightsURL, "its \"\(BaseFingerprint.metadataKey)\" metadata is not a base fingerprint")
            }
        }
        return adapter
    }

    /// An adapted projection.
    struct Key: Hashable {
        let layer: Int
        let projection: Projection
    }

    /// The projection and matrix of a PEFT tensor name, or nil when it is not a LoRA matrix of a projection.
    static func parse(_ name: String) -> (Key, isA: Bool)? {
        let prefix = "base_model.model."
        guard name.hasPrefix(prefix), let (layer, rest) = WeightNames.splitLayer(String(name.dropFirst(prefix.count))) else { return nil }
        for p in Projection.allCases {
            for (suffix, isA) in [("lora_A.weight", true), ("lora_B.weight", false), ("lora_A.default.weight", true), ("lora_B.default.weight", false)]
            where rest == "\(p.module).\(p.rawValue).\(suffix)" {
                return (Key(layer: layer, projection: p), isA)
            }
        }
        return nil
    }

    // MARK: checking against a model

    /// Throws when the adapter records a base and the checkpoint in `model` is not it, unless `force`.
    /// `directory` names the adapter.
    public func checkBase(_ model: URL, directory: URL, force: Bool) throws {
        guard let base, !force else { return }
        if let problem = base.mismatch(with: try BaseFingerprint.of(model)) {
            throw PruneError(file: directory, problem + " (--force to use it anyway)")
        }
    }

    /// Throws when the adapter does not fit a model with `model`'s config: a tensor for a layer the model
    /// lacks (an adapter trained on a differently-cut model), a shape that differs from the projection's,
    /// or a configured target without its matrices. `directory` names the adapter in refusals.
    public func validate(against model: LlamaConfig, directory: URL) throws {
        let weightsURL = directory.appendingPathComponent(Self.weightsFile)
        let L = model.numHiddenLayers
        if let bad = config.layers?.first(where: { $0 >= L }) {
            throw PruneError(file: directory.appendingPathComponent(Self.configFile),
                             "layers_to_transform names layer \(bad) but the model has \(L) layers (0…\(L - 1)); was the adapter trained on a differently-cut model?")
        }
        for w in weights {
            let name = WeightNames.peftLoRA(w.projection, layer: w.layer, isA: true)
            guard w.layer < L else {
                throw PruneError(file: weightsURL, "tensor \"\(name)\" is for layer \(w.layer) but the model has \(L) layers (0…\(L - 1)); was the adapter trained on a differently-cut model?")
            }
            let (out, inp) = Self.shape(w.projection, model)
            guard w.a.shape == [config.rank, inp] else {
                throw PruneError(file: weightsURL, "tensor \"\(name)\" has shape \(w.a.shape); the model's \(w.projection.rawValue) needs (\(config.rank), \(inp))")
            }
            guard w.b.shape == [out, config.rank] else {
                throw PruneError(file: weightsURL, "tensor \"\(WeightNames.peftLoRA(w.projection, layer: w.layer, isA: false))\" has shape \(w.b.shape); the model's \(w.projection.rawValue) needs (\(out), \(config.rank))")
            }
        }
        let present = Set(weights.map { Key(layer: $0.layer, projection: $0.projection) })
        for layer in config.layers ?? Array(0..<L) {
            for p in config.targets where !present.contains(Key(layer: layer, projection: p)) {
                throw PruneError(file: weightsURL, "tensor \"\(WeightNames.peftLoRA(p, layer: layer, isA: true))\" is missing; was the adapter trained on a model with other layers?")
            }
        }
    }

    /// (out, in) of a projection of `c`: q (H·D, C), k and v (G·D, C), o (C, H·D), gate and up (F, C), down (C, F).
    public static func shape(_ p: Projection, _ c: LlamaConfig) -> (out: Int, in: Int) {
        let C = c.hiddenSize, F = c.intermediateSize
        switch p {
        case .q: return (c.numAttentionHeads * c.headDim, C)
        case .k, .v: return (c.numKeyValueHeads * c.headDim, C)
        case .o: return (C, c.numAttentionHeads * c.headDim)
        case .gate, .up: return (F, C)
        case .down: return (C, F)
        }
    }

    // MARK: writing

    /// Writes adapter_config.json and adapter_model.safetensors (F32) into `directory`, built under a
    /// temporary name and renamed at the end; a non-empty `directory` is replaced only with `force`.
    public func write(to directory: URL, force: Bool = false) throws {
        for w in weights where w.a.shape.count != 2 || w.b.shape.count != 2 || w.a.shape[0] != config.rank || w.b.shape[1] != config.rank {
            throw PruneError(file: directory, "layer \(w.layer) \(w.projection.rawValue): A \(w.a.shape), B \(w.b.shape) do not have rank \(config.rank)")
        }
        let destination = try CheckpointDestination(output: directory, inputs: [], force: force)
        var items: [SafetensorsItem] = []
        for w in weights {
            items.append(SafetensorsItem(name: WeightNames.peftLoRA(w.projection, layer: w.layer, isA: true), tensor: w.a))
            items.append(SafetensorsItem(name: WeightNames.peftLoRA(w.projection, layer: w.layer, isA: false), tensor: w.b))
        }
        let configData = try ConfigJSON.data(config.json)
        try destination.write { tmp in
            try AtomicFile.write(configData, to: tmp.appendingPathComponent(Self.configFile))
            try SafetensorsWriter.write(items, metadata: base.map { [BaseFingerprint.metadataKey: $0.metadataValue] } ?? [:],
                                        to: tmp.appendingPathComponent(Self.weightsFile))
        }
    }
}
