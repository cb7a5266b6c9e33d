// Makes a model trainable as a `TrainingConfiguration` says: attaches LoRA adapters (B = 0, A Kaiming-uniform
// as PEFT does), allocates gradient buffers for exactly the trainable tensors (frozen ones get none), lists
// them by name and zeroes them once per step.
// Dimension glossary: C model dim, V vocab, R LoRA rank; I/O a projection's in/out features.
import Checkpoint
import Foundation
import Llama
import Tensor

/// The trainable parameters of a model.
public final class TrainableSet {
    /// The model, with adapters and gradient buffers attached.
    public let model: LlamaModel
    /// What was asked to train.
    public let configuration: TrainingConfiguration
    /// Every trainable tensor with its gradient, in a stable order (layer by layer, then the head).
    public private(set) var parameters: [TrainableParameter] = []

    /// Attaches adapters and gradient buffers to `model`. The model should have none yet (a fresh load).
    public init(model: LlamaModel, configuration: TrainingConfiguration) throws {
        self.model = model
        self.configuration = configuration
        try configuration.validate(layers: model.layers.count)
        if let lora = configuration.lora { attachLoRA(lora) }
        for l in Set(configuration.fullLayers).sorted() { trainFullLayer(l) }
        if configuration.trainsFinalNorm {
            let g = model.dFinalNorm ?? Tensor(zeros: model.finalNorm.shape)
            model.dFinalNorm = g
            parameters.append(TrainableParameter(name: WeightNames.finalNorm, value: model.finalNorm, gradient: g))
        }
        if configuration.trainsLMHead {
            if let head = model.untiedLMHead {
                let g = model.dUntiedLMHead ?? Tensor(zeros: head.shape)
                model.dUntiedLMHead = g
                parameters.append(TrainableParameter(name: WeightNames.lmHead, value: head, gradient: g))
            } else {
                // Tied: one matrix, one gradient that sums its embedding and lm_head uses.
                let g = model.dEmbedding ?? Tensor(zeros: model.embedding.shape)
                model.dEmbedding = g
                parameters.append(TrainableParameter(name: WeightNames.embedding, value: model.embedding, gradient: g))
            }
        }
    }

    /// Sets every gradient to zero (once per optimizer step; backward passes add into them).
    public func zeroGradients() {
        for p in parameters { p.gradient.zero() }
    }

    /// The parameter called `name`, if it trains.
    public func parameter(named name: String) -> TrainableParameter? {
        parameters.first { $0.name == name }
    }

    /// Number of trainable scalars.
    public var scalarCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Kaiming-uniform bound of PEFT's lora_A init (`kaiming_uniform_(a=√5)`): gain √(2/(1+5)) times √(3/fan_in),
    /// which is 1/√fan_in.
    public static func kaimingUniformBound(fanIn: Int) -> Float { Float(1.0 / Double(fanIn).squareRoot()) }

    private func attachLoRA(_ s: LoRASettings) {
        var rng = SeededGenerator(seed: s.seed)
        let layers = s.layers.map { Set($0).sorted() } ?? Array(model.layers.indices)
        let projections = Projection.allCases.filter { s.projections.contains($0) }
        for l in layers {
            for p in projections {
                let linear = model.layers[l].linear(p)
                let bound = Self.kaimingUniformBound(fanIn: linear.inFeatures)
                let a = Tensor(zeros: [s.rank, linear.inFeatures])                 // (R, I)
                for i in 0..<a.count { a[i] = Float.random(in: -bound...bound, using: &rng) }
                let b = Tensor(zeros: [linear.outFeatures, s.rank])                // (O, R), zero: starts at the base model
                let adapter = LoRAAdapter(a: a, b: b, alpha: s.alpha)
                adapter.dA = Tensor(zeros: a.shape)
                adapter.dB = Tensor(zeros: b.shape)
                linear.lora = adapter
                parameters.append(TrainableParameter(name: WeightNames.peftLoRA(p, layer: l, isA: true), value: a, gradient: adapter.dA!))
                parameters.append(TrainableParameter(name: WeightNames.peftLoRA(p, layer: l, isA: false), value: b, gradient: adapter.dB!))
            }
        }
    }

    private func trainFullLayer(_ l: Int) {
        let layer = model.layers[l]
        for p in Projection.allCases {
            let linear = layer.linear(p)
            let dW = Tensor(zeros: linear.weight.shape)
            linear.dWeight = dW
            parameters.append(TrainableParameter(name: WeightNames.projection(p, layer: l), value: linear.weight, gradient: dW))
            if let bias = linear.bias {
                let dB = Tensor(zeros: bias.shape)
                linear.dBias = dB
                parameters.append(TrainableParameter(name: WeightNames.projectionBias(p, layer: l), value: bias, gradient: dB))
            }
        }
        let dIn = Tensor(zeros: layer.inputNorm.shape), dPost = Tensor(zeros: layer.postAttentionNorm.shape)
        layer.dInputNorm = dIn
        layer.dPostAttentionNorm = dPost
        parameters.append(TrainableParameter(name: WeightNames.inputNorm(layer: l), value: layer.inputNorm, gradient: dIn))
        parameters.append(TrainableParameter(name: WeightNames.postAttentionNorm(layer: l), value: layer.postAttentionNorm, gradient: dPost))
    }
}
