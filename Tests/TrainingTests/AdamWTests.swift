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
        let optimizer = AdamW(parameters: set.parameters, learningRate: Float(ref.double("adamw.lr")),
                              beta1: betas[0].floatValue, beta2: betas[1].floatValue, eps: Float(ref.double("adamw.eps")),
                              weightDecay: Float(ref.double("adamw.weight_decay")))
        let losses = (ref.value("adamw.loss_before_each_step_and_after_last") as! [NSNumber]).map(\.doubleValue)
        let steps = Int(ref.double("adamw.steps"))
        XCTAssertEqual(losses.count, steps + 1)
        let pass = LlamaTrainingPass(model: model, batch: b, length: t)
        for step in 0..<steps {
            set.zeroGradients()
            let loss = pass.run(tokens: tokens, targets: targets).mean
            XCTAssertEqual(loss, losses[step], accuracy: ref.double("tolerances.loss_abs"), "loss before step \(step + 1)")
            optimizer.step()
        }
        XCTAssertEqual(optimizer.stepCount, steps)
        let after = NextTokenLoss.tally(logits: model.forward(tokens: tokens, batch: b, length: t).logits!,
                                        targets: targets, vocab: model.config.vocabSize).mean
        XCTAssertEqual(after, losses[steps], accuracy: ref.double("tolerances.loss_abs"), "loss after the last step")
        var worst: Float = 0
        for p in set.parameters {
            let expected = try ref.tensor("adamw.after3." + p.name)
            let err = p.value.maxAbsDifference(expected)
            XCTAssertLessThanOrEqual(Double(err), ref.double("tolerances.adamw_param_max_abs"), p.name)
            worst = max(worst, err)
        }
        print("AdamW: worst parameter error after \(steps) steps \(worst)")
    }

    func testDecayIsDecoupledFromTheGradient() {
        // With a zero gradient the moments stay zero and only the decay acts: p ← p·(1 − lr·wd).
        let value = Tensor(shape: [3], values: [1, -2, 4]), gradient = Tensor(zeros: [3])
        let optimizer = AdamW(parameters: [TrainableParameter(name: "p", value: value, gradient: gradient)],
                              learningRate: 0.1, weightDecay: 0.5)
        optimizer.step()
        XCTAssertEqual(value.array, [0.95, -1.9, 3.8].map { Float($0) })
    }

    func testFirstStepMovesEachWeightByTheLearningRate() {
        // Step 1: m̂ = g and v̂ = g², so the update is lr·g/(|g| + eps) ≈ lr·sign(g) whatever |g| is.
        let value = Tensor(shape: [3], values: [0, 0, 0]), gradient = Tensor(shape: [3], values: [3e-3, -50, 0.2])
        let optimizer = AdamW(parameters: [TrainableParameter(name: "p", value: value, gradient: gradient)],
                              learningRate: 0.01, weightDecay: 0)
        optimizer.step()
        for (v, e) in zip(value.array, [-0.01, 0.01, -0.01]) { XCTAssertEqual(v, Float(e), accuracy: 1e-7) }
    }
}
