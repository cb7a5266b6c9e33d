// The whole training pass against finite differences of the inference forward's loss on tiny random
// models: odd model dim (C ≠ H·D), one kv head for three query heads, biases, masked targets, untied and
// tied heads, LoRA + full layers + final norm + head at once, with and without checkpointing.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor
import TestSupport
import Training
import XCTest

final class TrainingPassGradientTests: XCTestCase {
    static func tinyModel(tied: Bool, seed: UInt64, layers: Int = 2) -> LlamaModel {
        let config = LlamaConfig(hiddenSize: 10, intermediateSize: 7, numHiddenLayers: layers, numAttentionHeads: 3,
                                 numKeyValueHeads: 1, headDim: 4, ropeTheta: 100, vocabSize: 13, tieWordEmbeddings: tied,
                                 attentionBias: true, mlpBias: true)
        let model = LlamaModel.random(config: config, seed: seed)
        // Projection and embedding weights of order 0.3 instead of 0.02, norm weights near 1 and biases (0 as
        // initialised) of order 0.3, so that every gradient is well above finite-difference noise without saturating
        // the softmax, and a bias the forward left out would show.
        var rng = SeededGenerator(seed: seed + 1)
        var matrices = [model.embedding.float32!] + (model.untiedLMHead.map { [$0.float32!] } ?? [])
        var norms = [model.finalNorm], biases: [Tensor] = []
        for l in model.layers {
            norms += [l.inputNorm, l.postAttentionNorm]
            for p in Projection.allCases {
                matrices.append(l.linear(p).weight.float32!)
                biases += l.linear(p).bias.map { [$0] } ?? []
            }
        }
        for t in matrices { for i in 0..<t.count { t[i] *= 15 } }
        for t in norms { for i in 0..<t.count { t[i] = 1 + Float.random(in: -0.3...0.3, using: &rng) } }
        for t in biases { for i in 0..<t.count { t[i] = Float.random(in: -0.3...0.3, using: &rng) } }
        return model
    }

    /// `configuration` on `model`, LoRA B drawn in ±0.5 (so that every LoRA gradient is non-trivial), and B = 2 random
    /// sequences of T = 5 tokens with their next-token targets, one prompt position masked.
    static func trainableBatch(model: LlamaModel, configuration: TrainingConfiguration) throws
        -> (set: TrainableSet, tokens: [Int32], targets: [Int32], b: Int, t: Int) {
        let set = try TrainableSet(model: model, configuration: configuration)
        var rng = SeededGenerator(seed: 3)
        for p in set.parameters where p.name.hasSuffix("lora_B.weight") {
            for i in 0..<p.value.count { p.value[i] = Float.random(in: -0.5...0.5, using: &rng) }
        }
        let b = 2, t = 5, V = model.config.vocabSize
        let tokens = (0..<b * t).map { _ in Int32.random(in: 0..<Int32(V), using: &rng) }
        var targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: b, length: t)
        targets[1] = NextTokenLoss.ignoreIndex   // a masked prompt position
        return (set, tokens, targets, b, t)
    }

    /// Checks every trainable tensor's gradient from `LlamaTrainingPass` against central differences of the
    /// loss that `LlamaModel.forward` (the inference path) gives.
    func check(model: LlamaModel, configuration: TrainingConfiguration, checkpointing: Bool, line: UInt = #line) throws {
        let (set, tokens, targets, b, t) = try Self.trainableBatch(model: model, configuration: configuration)
        let V = model.config.vocabSize
        func loss() -> Double {
            let logits = model.forward(tokens: tokens, batch: b, length: t).logits
            return NextTokenLoss.tally(logits: logits, targets: targets, vocab: V).mean
        }
        let pass = LlamaTrainingPass(model: model, batch: b, length: t, checkpointing: checkpointing)
        set.zeroGradients()
        let tally = pass.run(tokens: tokens, targets: targets)
        XCTAssertEqual(tally.count, b * (t - 1) - 1, line: line)
        assertPinned("training.forward", abs(tally.mean - loss()), within: Tolerance.trainingForward, "training loss = inference loss", line: line)
        // The float32 loss carries rounding noise of a few 1e-7, i.e. ~2e-5 after dividing by 2ε: relative to the
        // small q/k gradients that is up to ~2.5e-3 (a missing or wrong term shows as O(1)).
        for p in set.parameters {
            GradientCheck.assertClose(p.name, parameter: p.value.data, count: p.value.count, analytic: p.gradient.data,
                                      epsilon: 1e-2, tolerance: Tolerance.gradientCheckModel, loss: loss, line: line)
        }
    }

    static let everything = TrainingConfiguration(lora: LoRASettings(rank: 3, alpha: 4, seed: 1), fullLayers: [1],
                                                  trainsFinalNorm: true, trainsLMHead: true)

    func testUntiedModelWithLoRAFullLayerNormAndHead() throws {
        try check(model: Self.tinyModel(tied: false, seed: 1), configuration: Self.everything, checkpointing: false)
    }

    func testTiedModelSumsBothEmbeddingUses() throws {
        try check(model: Self.tinyModel(tied: true, seed: 2), configuration: Self.everything, checkpointing: false)
    }

    func testCheckpointedPassWithLoRAOnTheUpperLayerOnly() throws {
        // Layer 0 needs no backward at all; layer 1 needs no input gradient.
        let config = TrainingConfiguration(lora: LoRASettings(rank: 2, alpha: 2, projections: [.q, .v, .down], layers: [1]))
        try check(model: Self.tinyModel(tied: true, seed: 4), configuration: config, checkpointing: true)
    }
}
