// AdamW against torch.optim.AdamW: three LoRA steps on the stories260K reference batch from `lora.init`.
import Foundation
import Llama
import Tensor
import TestSupport
import Training
import XCTest

final class AdamWTests: XCTestCase {
    func testThreeStepsMatchTorch() throws {
        let ref = try Reference()
        let (model, set) = try ReferenceGradientTests.loraModel(ref)
        let (tokens, targets, b, t) = ReferenceGradientTests.batch(ref)
        let betas = ref.value("adamw.betas") as! [NSNumber]
        // The reference is torch.optim.AdamW over the LoRA tensors: decay on everything.
        let optimizer = AdamW(trainable: set, learningRate: Float(ref.double("adamw.lr")),
                              beta1: betas[0].floatValue, beta2: betas[1].floatValue, eps: Float(ref.double("adamw.eps")),
                              weightDecay: Float(ref.double("adamw.weight_decay")), decaysNormsAndBiases: true)
        let losses = (ref.value("adamw.loss_before_each_step_and_after_last") as! [NSNumber]).map(\.doubleValue)
        let steps = Int(ref.double("adamw.steps"))
        XCTAssertEqual(losses.count, steps + 1)
        let pass = LlamaTrainingPass(model: model, batch: b, length: t)
        var worstLoss = 0.0
        for step in 0..<steps {
            set.zeroGradients()
            let loss = pass.run(tokens: tokens, targets: targets).mean
            worstLoss = max(worstLoss, abs(loss - losses[step]))
            optimizer.step()
        }
        XCTAssertEqual(optimizer.stepCount, steps)
        let after = NextTokenLoss.tally(logits: model.forward(tokens: tokens, batch: b, length: t).logits,
                                        targets: targets, vocab: model.config.vocabSize).mean
        worstLoss = max(worstLoss, abs(after - losses[steps]))
        assertPinned("adamw.loss", worstLoss, within: Tolerance.adamWLoss, "before each step and after the last")
        var worst: Float = 0
        for p in set.parameters {
            let expected = try ref.tensor("adamw.after3." + p.name)
            let err = p.value.maxAbsDifference(expected)
            worst = max(worst, err)
        }
        assertPinned("adamw.parameter", Double(worst), within: Tolerance.adamWParameter, "after \(steps) steps")
    }

    func testDecayIsDecoupledFromTheGradient() {
        // With a zero gradient the moments stay zero and only the decay acts: p ← p·(1 − lr·wd).
        let value = Tensor(shape: [3], values: [1, -2, 4]), gradient = Tensor(zeros: [3])
        let optimizer = AdamW(values: value, gradients: gradient, segments: [(0, 3, true)], learningRate: 0.1, weightDecay: 0.5)
        optimizer.step()
        XCTAssertEqual(value.array, [0.95, -1.9, 3.8].map { Float($0) })
    }

    func testFirstStepMovesEachWeightByTheLearningRate() {
        // Step 1: m̂ = g and v̂ = g², so the update is lr·g/(|g| + eps) ≈ lr·sign(g) whatever |g| is.
        let value = Tensor(shape: [3], values: [0, 0, 0]), gradient = Tensor(shape: [3], values: [3e-3, -50, 0.2])
        let optimizer = AdamW(values: value, gradients: gradient, segments: [(0, 3, true)], learningRate: 0.01, weightDecay: 0)
        optimizer.step()
        for (v, e) in zip(value.array, [-0.01, 0.01, -0.01]) { XCTAssertEqual(v, Float(e), accuracy: 1e-7) }
    }

    func testNormsAndBiasesAreNotDecayedByDefault() throws {
        let model = try LlamaModel.load(directory: try Reference().modelDirectory)
        let set = try TrainableSet(model: model, configuration: .partial(lastLayers: 1, of: model.layers.count))
        let decayed = Set(set.parameters.filter(\.decays).map(\.name))
        XCTAssertTrue(decayed.contains("model.layers.4.mlp.down_proj.weight"))
        XCTAssertFalse(decayed.contains("model.layers.4.input_layernorm.weight"))
        XCTAssertFalse(decayed.contains("model.norm.weight"))
        // With a zero gradient only the decay acts: norms keep their value, weights shrink.
        let before = set.parameters.map { $0.value.copy() }
        let optimizer = AdamW(trainable: set, learningRate: 0.1, weightDecay: 0.5)
        optimizer.step()
        for (p, old) in zip(set.parameters, before) {
            let expected: Float = p.decays ? 0.95 : 1
            XCTAssertEqual(p.value[0], old[0] * expected, accuracy: 1e-7, p.name)
        }
    }

    func testRestoredStateContinuesExactly() throws {
        // Two optimizers over the same start: one steps 4 times; the other steps twice, is rebuilt from its
        // saved state, and steps twice more. Same values, bit for bit.
        func run(restartAfter: Int?) throws -> [Float] {
            let ref = try Reference()
            let (model, set) = try ReferenceGradientTests.loraModel(ref)
            let (tokens, targets, b, t) = ReferenceGradientTests.batch(ref)
            let pass = LlamaTrainingPass(model: model, batch: b, length: t)
            var optimizer = AdamW(trainable: set, learningRate: 1e-2)
            for step in 0..<4 {
                if step == restartAfter {
                    let m = optimizer.firstMoments.copy(), v = optimizer.secondMoments.copy(), n = optimizer.stepCount
                    optimizer = AdamW(trainable: set, learningRate: 1e-2)
                    optimizer.restore(stepCount: n, firstMoments: m.data, secondMoments: v.data)
                }
                set.zeroGradients()
                _ = pass.run(tokens: tokens, targets: targets)
                optimizer.step()
            }
            return set.values.array
        }
        XCTAssertEqual(try run(restartAfter: nil), try run(restartAfter: 2))
    }
}
