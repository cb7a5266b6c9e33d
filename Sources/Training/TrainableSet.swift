// Makes a model trainable as a `TrainingConfiguration` says: attaches LoRA adapters (B = 0, A Kaiming-uniform
// as PEFT does), and puts every trainable tensor into one flat value buffer with one flat gradient buffer beside
// it (frozen tensors get none): the tensors the model and the adapters read are views into them, so the
// optimizer, gradient clipping, checkpoints and (later) an allreduce each see one contiguous buffer.
// Layout, in this order, each slot starting on a 64-byte boundary: LoRA A then B for each adapted projection
// (layers ascending, projections q, k, v, o, gate, up, down), then each fully trained layer's projection
// weights (and biases) and its two norms, then the final norm, then lm_head (the embedding when tied).
// Dimension glossary: C model dim, V vocab, R LoRA rank; I/O a projection's in/out features.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor

/// The trainable parameters of a model.
public final class TrainableSet {
    /// The model, with adapters and gradient buffers attached.
    public let model: LlamaModel
    /// What was asked to train.
    public let configuration: TrainingConfiguration
    /// Every trainable tensor with its gradient, in the layout order above.
    public let parameters: [TrainableParameter]
    /// All trainable values, flat (padding between slots stays zero).
    public let values: Tensor
    /// All gradients, flat, in the same layout.
    public let gradients: Tensor

    /// Attaches adapters and gradient buffers to `model`. The model should have none yet (a fresh load).
    public init(model: LlamaModel, configuration: TrainingConfiguration) throws {
        self.model = model
        self.configuration = configuration
        try configuration.validate(layers: model.layers.count)
        // 1. The slots: name, shape, and what fills the value.
        var slots: [Slot] = []
        if let lora = configuration.lora {
            let layers = lora.layers.map { Set($0).sorted() } ?? Array(model.layers.indices)
            for l in layers {
                for p in Projection.allCases where lora.projections.contains(p) {
                    let linear = model.layers[l].linear(p)
                    slots.append(Slot(name: WeightNames.peftLoRA(p, layer: l, isA: true), shape: [lora.rank, linear.inFeatures],
                                      source: .loraA(layer: l, projection: p)))
                    slots.append(Slot(name: WeightNames.peftLoRA(p, layer: l, isA: false), shape: [linear.outFeatures, lora.rank],
                                      source: .loraB(layer: l, projection: p)))
                }
            }
        }
        for l in Set(configuration.fullLayers).sorted() {
            let layer = model.layers[l]
            for p in Projection.allCases {
                let linear = layer.linear(p)
                slots.append(Slot(name: WeightNames.projection(p, layer: l), source: .model(linear.weight)))
                if let bias = linear.bias { slots.append(Slot(name: WeightNames.projectionBias(p, layer: l), source: .model(Weight(bias)))) }
            }
            slots.append(Slot(name: WeightNames.inputNorm(layer: l), source: .model(Weight(layer.inputNorm))))
            slots.append(Slot(name: WeightNames.postAttentionNorm(layer: l), source: .model(Weight(layer.postAttentionNorm))))
        }
        if configuration.trainsFinalNorm { slots.append(Slot(name: WeightNames.finalNorm, source: .model(Weight(model.finalNorm)))) }
        if configuration.trainsLMHead {
            // Tied: one matrix, one gradient that sums its embedding and lm_head uses.
            if let head = model.untiedLMHead { slots.append(Slot(name: WeightNames.lmHead, source: .model(head))) }
            else { slots.append(Slot(name: WeightNames.embedding, source: .model(model.embedding))) }
        }
        // 2. The flat buffers.
        var offsets: [Int] = []
        var total = 0
        for slot in slots {
            offsets.append(total)
            total += (slot.shape.reduce(1, *) + 15) / 16 * 16
        }
        values = Tensor(zeros: [total])
        gradients = Tensor(zeros: [total])
        // 3. Views, filled and attached.
        var rng = SeededGenerator(seed: configuration.lora?.seed ?? 0)
        var params: [TrainableParameter] = []
        for (slot, offset) in zip(slots, offsets) {
            let value = values.view(offset: offset, shape: slot.shape), gradient = gradients.view(offset: offset, shape: slot.shape)
            params.append(TrainableParameter(name: slot.name, value: value, gradient: gradient, offset: offset,
                                             decays: TrainableParameter.decaysByDefault(slot.name)))
            switch slot.source {
            case .loraA:
                let bound = Self.kaimingUniformBound(fanIn: slot.shape[1])
                for i in 0..<value.count { value[i] = Float.random(in: -bound...bound, using: &rng) }
            case .loraB(let l, let p):
                // B stays zero: training starts at the base model.
                let aParam = params[params.count - 2]
                let adapter = LoRAAdapter(a: aParam.value, b: value, alpha: configuration.lora!.alpha)
                adapter.dA = aParam.gradient
                adapter.dB = gradient
                model.layers[l].linear(p).lora = adapter
            case .model(let weight):
                if weight.count > 0 { weight.widenRows(0, count: weight.rows, into: value.data) }
                model.replaceParameter(named: slot.name, with: value)
                Self.attachGradient(named: slot.name, gradient, to: model)
            }
        }
        parameters = params
    }

    /// Sets every gradient to zero (once per optimizer step; backward passes add into them).
    public func zeroGradients() { gradients.zero() }

    /// The L2 norm of all gradients together (in Double).
    public func gradientNorm() -> Double {
        var sum = 0.0
        for i in 0..<gradients.count { sum += Double(gradients[i]) * Double(gradients[i]) }
        return sum.squareRoot()
    }

    /// Multiplies every gradient by `factor` (gradient clipping).
    public func scaleGradients(by factor: Float) {
        for i in 0..<gradients.count { gradients[i] *= factor }
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

    /// One trainable tensor before the buffers exist.
    private struct Slot {
        /// A model parameter's current value (16-bit matrices are widened straight into the flat buffer).
        enum Source { case loraA(layer: Int, projection: Projection), loraB(layer: Int, projection: Projection), model(Weight) }
        let name: String
        let shape: [Int]
        let source: Source
        init(name: String, shape: [Int], source: Source) { self.name = name; self.shape = shape; self.source = source }
        init(name: String, source: Source) {
            guard case .model(let t) = source else { preconditionFailure("shape needed") }
            self.init(name: name, shape: t.shape, source: source)
        }
    }

    /// Gives the model's parameter `name` its gradient buffer.
    private static func attachGradient(named name: String, _ g: Tensor, to model: LlamaModel) {
        if name == WeightNames.embedding { model.dEmbedding = g; return }
        if name == WeightNames.lmHead { model.dUntiedLMHead = g; return }
        if name == WeightNames.finalNorm { model.dFinalNorm = g; return }
        for (i, layer) in model.layers.enumerated() {
            if name == WeightNames.inputNorm(layer: i) { layer.dInputNorm = g; return }
            if name == WeightNames.postAttentionNorm(layer: i) { layer.dPostAttentionNorm = g; return }
            for p in Projection.allCases {
                if name == WeightNames.projection(p, layer: i) { layer.linear(p).dWeight = g; return }
                if name == WeightNames.projectionBias(p, layer: i) { layer.linear(p).dBias = g; return }
            }
        }
        preconditionFailure("no parameter named \(name)")
    }
}
