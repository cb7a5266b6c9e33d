// LayerSkip training (early-exit loss, layer dropout) against transformers/PEFT in float64
// (Tests/Fixtures/reference/stories260K/layerskip.*) and against finite differences of an independent
// per-sample inference computation on tiny random models.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor
import TestSupport
import Training
import XCTest

final class LayerSkipTests: XCTestCase {
    // About 3× the errors measured against the float64 reference (the reference's own bounds are 1e-4 for losses,
    // 1e-3 for gradients relative to the tensor's largest value, 1e-4 for parameters after AdamW): loss 4.7e-7,
    // per-exit CE 4.7e-7, gradient 4.0e-6, AdamW losses 2.4e-7 and parameters 6.3e-6. The loss is one float32
    // ulp of 4.1 (4.8e-7) or less with every kernel set: 2.3e-7 (AVX-512, scalar) and 4.7e-7 (AVX2) with blockwise
    // attention; the softmax attention before it measured 6.1e-8 (AVX-512), 6.1e-7 (scalar), 7.2e-7 (AVX2).
    static let lossTolerance = 1.5e-6
    static let exitCETolerance = 1.5e-6
    static let gradientTolerance = 1.2e-5
    static let adamWLossTolerance = 8e-7
    static let adamWParameterTolerance: Float = 2e-5

    // MARK: reference

    func testExitWeightsAreTheReferences() throws {
        let ref = try Reference("layerskip")
        let weights = EarlyExitLoss(scale: ref.double("e_scale")).weights(layers: 5).weights
        let expected = (ref.value("weights") as! [NSNumber]).map(\.doubleValue)
        for (w, e) in zip(weights, expected) { XCTAssertEqual(w, e, accuracy: 1e-15) }
        XCTAssertEqual(EarlyExitLoss.rawWeights(layers: 5, scale: 1), [0, 1, 3, 6, 10])
    }

    static func referenceMask(_ ref: Reference) -> LayerSkipMask {
        LayerSkipMask((ref.value("skip_mask") as! [[NSNumber]]).map { $0.map { $0.intValue == 1 } })
    }

    func testEarlyExitLossAndGradientsWithSkipMaskMatchPEFT() throws {
        let ls = try Reference("layerskip"), ref = try Reference()
        let (model, set) = try ReferenceGradientTests.loraModel(ref)
        let (tokens, targets, b, t) = ReferenceGradientTests.batch(ref)
        let mask = Self.referenceMask(ls)
        XCTAssertEqual(mask.skippedCount, 3)
        let exits = EarlyExitLoss(scale: ls.double("e_scale")).weights(layers: model.layers.count)
        let expectedCE = (ls.value("per_exit_ce") as! [NSNumber]).map(\.doubleValue)
        XCTAssertLessThanOrEqual(Self.lossTolerance, ls.double("tolerances.loss_abs"))
        let lossTolerance = Self.lossTolerance, ceTolerance = Self.exitCETolerance
        for checkpointing in [false, true] {
            let pass = LlamaTrainingPass(model: model, batch: b, length: t, checkpointing: checkpointing)
            set.zeroGradients()
            let loss = pass.run(tokens: tokens, targets: targets, exits: exits, skipping: mask).mean
            XCTAssertEqual(loss, ls.double("loss"), accuracy: lossTolerance)
            XCTAssertNil(pass.exitTallies[0], "exit 0 has weight 0 and is not computed")
            var worstCE = 0.0
            for l in 1..<5 {
                worstCE = max(worstCE, abs(pass.exitTallies[l]!.mean - expectedCE[l]))
                XCTAssertEqual(pass.exitTallies[l]!.mean, expectedCE[l], accuracy: ceTolerance, "exit \(l)")
            }
            let worst = try ReferenceGradientTests.assertGradientsMatch(set, ls, prefix: "layerskip.grad.", key: "layerskip.gradient",
                                                                        tolerance: Self.gradientTolerance)
            print("LayerSkip (checkpointing \(checkpointing)): loss \(loss) vs \(ls.double("loss")) (error \(abs(loss - ls.double("loss")))), worst exit CE error \(worstCE), worst gradient error \(worst.0) at \(worst.1)")
            // Every exit on (exit 0 included), as an evaluation.
            _ = pass.loss(tokens: tokens, targets: targets, exits: ExitWeights([1, 1, 1, 1, 1]), skipping: mask)
            for l in 0..<5 { XCTAssertEqual(pass.exitTallies[l]!.mean, expectedCE[l], accuracy: ceTolerance, "exit \(l)") }
        }
    }

    func testThreeAdamWStepsOnTheEarlyExitLossMatchTorch() throws {
        let ls = try Reference("layerskip"), ref = try Reference()
        let (model, set) = try ReferenceGradientTests.loraModel(ref)
        let (tokens, targets, b, t) = ReferenceGradientTests.batch(ref)
        let betas = ls.value("earlyexit_adamw.betas") as! [NSNumber]
        let optimizer = AdamW(trainable: set, learningRate: Float(ls.double("earlyexit_adamw.lr")),
                              beta1: betas[0].floatValue, beta2: betas[1].floatValue, eps: Float(ls.double("earlyexit_adamw.eps")),
                              weightDecay: Float(ls.double("earlyexit_adamw.weight_decay")), decaysNormsAndBiases: true)
        let losses = (ls.value("earlyexit_adamw.loss_before_each_step") as! [NSNumber]).map(\.doubleValue)
        let exits = EarlyExitLoss(scale: ls.double("earlyexit_adamw.e_scale")).weights(layers: model.layers.count)
        let pass = LlamaTrainingPass(model: model, batch: b, length: t)
        var worstLoss = 0.0
        for (step, expected) in losses.enumerated() {
            set.zeroGradients()
            let loss = pass.run(tokens: tokens, targets: targets, exits: exits).mean
            XCTAssertEqual(loss, expected, accuracy: Self.adamWLossTolerance, "loss before step \(step + 1)")
            worstLoss = max(worstLoss, abs(loss - expected))
            optimizer.step()
        }
        var worst: Float = 0
        for p in set.parameters {
            let err = p.value.maxAbsDifference(try ls.tensor("earlyexit.adamw.after3." + p.name))
            XCTAssertLessThanOrEqual(err, Self.adamWParameterTolerance, p.name)
            worst = max(worst, err)
        }
        print("early-exit AdamW: worst loss error \(worstLoss), worst parameter error after 3 steps \(worst)")
    }

    func testLastExitAloneIsTheOrdinaryPass() throws {
        let ref = try Reference()
        func gradients(_ exits: ExitWeights?) throws -> (Double, [Tensor]) {
            try ReferenceGradientTests.loraGradients(ref) { $0.run(tokens: $1, targets: $2, exits: exits) }
        }
        let (plainLoss, plain) = try gradients(nil)
        let (lastLoss, last) = try gradients(EarlyExitLoss(scale: 0).weights(layers: 5))
        XCTAssertEqual(plainLoss, lastLoss)
        for (p, q) in zip(plain, last) { assertEqualElements(p.array, q.array) }
    }

    // MARK: finite differences

    /// The early-exit loss with per-sample skipping, computed one sample at a time through the inference forward
    /// (`skipping` layers, hidden states captured) and `logits(fromHidden:)`: independent of the training pass.
    static func inferenceLoss(model: LlamaModel, tokens: [Int32], targets: [Int32], batch b: Int, length t: Int,
                              exits: ExitWeights, mask: LayerSkipMask) -> Double {
        let V = model.config.vocabSize
        var total = 0.0, count = 0
        let counted = exits.activeExits[0]
        for s in 0..<b {
            let ids = Array(tokens[s * t..<(s + 1) * t]), y = Array(targets[s * t..<(s + 1) * t])
            let out = model.forward(tokens: ids, batch: 1, length: t, skipping: Set((0..<model.layers.count).filter { mask.skips[s][$0] }),
                                    captureHiddenStates: true)
            XCTAssertEqual(out.hiddenStates.count, model.layers.count + 1)
            for (l, w) in exits.weights.enumerated() where w > 0 {
                let logits = Tensor(zeros: [1, t, V])
                model.logits(fromHidden: out.hiddenStates[l + 1].data, rows: t, into: logits.data)
                let tally = NextTokenLoss.tally(logits: logits, targets: y, vocab: V)
                total += w * tally.sum
                if l == counted { count += tally.count }
            }
        }
        return total / Double(count)
    }

    /// Every trainable tensor's gradient against central differences of `inferenceLoss`; those of `zeroLayers`
    /// (skipped by every sample, or read by no exit) must be exactly zero.
    func check(model: LlamaModel, configuration: TrainingConfiguration, exits: ExitWeights, mask: LayerSkipMask,
               checkpointing: Bool, zeroLayers: Set<Int> = [], line: UInt = #line) throws {
        let set = try TrainableSet(model: model, configuration: configuration)
        var rng = SeededGenerator(seed: 3)
        for p in set.parameters where p.name.hasSuffix("lora_B.weight") {
            for i in 0..<p.value.count { p.value[i] = Float.random(in: -0.5...0.5, using: &rng) }
        }
        let b = mask.batch, t = 5, V = model.config.vocabSize
        let tokens = (0..<b * t).map { _ in Int32.random(in: 0..<Int32(V), using: &rng) }
        var targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: b, length: t)
        targets[1] = NextTokenLoss.ignoreIndex
        let loss = { Self.inferenceLoss(model: model, tokens: tokens, targets: targets, batch: b, length: t, exits: exits, mask: mask) }
        let pass = LlamaTrainingPass(model: model, batch: b, length: t, checkpointing: checkpointing)
        set.zeroGradients()
        let tally = pass.run(tokens: tokens, targets: targets, exits: exits, skipping: mask)
        XCTAssertEqual(tally.mean, loss(), accuracy: 1e-5, "training forward = inference forward", line: line)
        for p in set.parameters {
            if zeroLayers.contains(where: { p.name.contains("layers.\($0).") }) {
                XCTAssertEqual(p.gradient.maxAbs, 0, p.name, line: line)
                continue
            }
            // ε = 2.5e-3: at 1e-2 the tied embedding's central difference is off by 3.5e-2 (its error falls as ε², so
            // truncation, not the gradient); at 2.5e-3 the worst tensor is off by 3.2e-3, Float32 rounding.
            GradientCheck.assertClose(p.name, parameter: p.value.data, count: p.value.count, analytic: p.gradient.data,
                                      epsilon: 2.5e-3, tolerance: 1e-2, loss: loss, line: line)
        }
    }

    static let everything = TrainingPassGradientTests.everything

    func testEarlyExitGradientsWithSkippedLayersMatchFiniteDifferences() throws {
        // 4 layers; sample 0 skips layer 1, sample 1 skips layers 1 and 2, sample 2 none; exits 1, 2, 3 on
        // (plus exit 0 with its own weight).
        let mask = LayerSkipMask([[false, true, false, false], [false, true, true, false], [false, false, false, false]])
        let exits = ExitWeights([0.1, 0.2, 0.3, 0.4])
        var config = Self.everything
        config.fullLayers = [2]
        try check(model: TrainingPassGradientTests.tinyModel(tied: false, seed: 11, layers: 4), configuration: config,
                  exits: exits, mask: mask, checkpointing: false)
    }

    func testTiedCheckpointedPassWithALayerEverySampleSkips() throws {
        // Layer 1 is skipped by both samples (it does not run at all, and gets nothing).
        let mask = LayerSkipMask([[false, true, true], [false, true, false]])
        try check(model: TrainingPassGradientTests.tinyModel(tied: true, seed: 12, layers: 3), configuration: Self.everything,
                  exits: ExitWeights([0.3, 0.3, 0.4]), mask: mask, checkpointing: true, zeroLayers: [1])
        // The last exit off: layer 2's output is read by no exit.
        try check(model: TrainingPassGradientTests.tinyModel(tied: true, seed: 15, layers: 3), configuration: Self.everything,
                  exits: ExitWeights([0.5, 0.5, 0]), mask: mask, checkpointing: true, zeroLayers: [1, 2])
    }

    func testLoRAOnTheUpperLayersWithFinalNormTrainingAndLowExits() throws {
        // Layers 0 and 1 need no backward; exit 0 still trains the final norm and the head.
        var config = TrainingConfiguration(lora: LoRASettings(rank: 2, alpha: 2, projections: [.q, .v, .down], layers: [2]))
        config.trainsFinalNorm = true
        config.trainsLMHead = true
        let mask = LayerSkipMask([[false, false, true], [true, false, false]])
        try check(model: TrainingPassGradientTests.tinyModel(tied: false, seed: 13, layers: 3), configuration: config,
                  exits: EarlyExitLoss(scale: 1).weights(layers: 3), mask: mask, checkpointing: false)
        try check(model: TrainingPassGradientTests.tinyModel(tied: false, seed: 14, layers: 3), configuration: config,
                  exits: ExitWeights([0.6, 0.1, 0.3]), mask: mask, checkpointing: true)
    }

    // MARK: configuration

    func testLayerDropoutRatesRiseFromZeroToTheRate() {
        let d = LayerDropout(rate: 0.2)
        let p = d.rates(layers: 5)
        XCTAssertEqual(p[0], 0)
        XCTAssertEqual(p[4], 0.2, accuracy: 1e-15)
        XCTAssertEqual(p[2], 0.2 * (2.0.squareRoot() - 1), accuracy: 1e-15)
        XCTAssertTrue(zip(p, p.dropFirst()).allSatisfy { $0 < $1 })
        XCTAssertEqual(LayerDropout(rate: 0.3, shape: .linear).rates(layers: 4)[2], 0.2, accuracy: 1e-15)
        XCTAssertEqual(LayerDropout(rate: 0.3, shape: .uniform).rates(layers: 4), [0.3, 0.3, 0.3, 0.3])
        XCTAssertEqual(d.rates(layers: 5, scale: 0.5)[4], 0.1, accuracy: 1e-15)
    }

    func testLayerDropoutMasksAreSeededAndFollowTheRates() {
        let d = LayerDropout(rate: 0.5)
        XCTAssertEqual(d.mask(key: 7, batch: 4, layers: 6), d.mask(key: 7, batch: 4, layers: 6))
        XCTAssertNotEqual(d.mask(key: 7, batch: 4, layers: 6), d.mask(key: 8, batch: 4, layers: 6))
        // Frequencies over many keys: layer 0 never, the last about half the time.
        var counts = [Int](repeating: 0, count: 6)
        let draws = 4000
        for key in 0..<UInt64(draws / 4) {
            let m = d.mask(key: key &* 0x9E37_79B9_7F4A_7C15, batch: 4, layers: 6)
            for l in 0..<6 { counts[l] += m.skippers(of: l).count }
        }
        let rates = d.rates(layers: 6)
        for l in 0..<6 {
            XCTAssertEqual(Double(counts[l]) / Double(draws), rates[l], accuracy: 0.03, "layer \(l)")
        }
        XCTAssertEqual(counts[0], 0)
    }

    func testSettingsDecodeAsRecipesSpellThem() throws {
        let loss = try JSONDecoder().decode(EarlyExitLoss.self, from: Data(#"{"scale": 0.5, "curriculum": "rotational:4"}"#.utf8))
        XCTAssertEqual(loss, EarlyExitLoss(scale: 0.5, curriculum: .rotational(4)))
        XCTAssertEqual(try JSONDecoder().decode(EarlyExitLoss.self, from: JSONEncoder().encode(loss)), loss)
        XCTAssertEqual(try JSONDecoder().decode(EarlyExitLoss.self, from: Data("{}".utf8)), EarlyExitLoss())
        XCTAssertThrowsError(try JSONDecoder().decode(EarlyExitLoss.self, from: Data(#"{"curriculum": "often"}"#.utf8)))
        XCTAssertThrowsError(try JSONDecoder().decode(EarlyExitLoss.self, from: Data(#"{"scale": -1}"#.utf8)))
        let dropout = try JSONDecoder().decode(LayerDropout.self, from: Data(#"{"rate": 0.2, "shape": "linear"}"#.utf8))
        XCTAssertEqual(dropout, LayerDropout(rate: 0.2, shape: .linear))
    }

    func testCurricula() {
        XCTAssertEqual(EarlyExitCurriculum(argument: "rotational:3"), .rotational(3))
        XCTAssertEqual(EarlyExitCurriculum(argument: "gradual"), .gradual)
        XCTAssertEqual(EarlyExitCurriculum(argument: "none"), EarlyExitCurriculum.none)
        XCTAssertNil(EarlyExitCurriculum(argument: "rotational:0"))
        XCTAssertNil(EarlyExitCurriculum(argument: "rotational"))
        XCTAssertNil(EarlyExitCurriculum(argument: "sometimes"))
        // Rotational: every R-th exit, shifted by the step, plus the last.
        let rot = EarlyExitLoss(scale: 1, curriculum: .rotational(3))
        XCTAssertEqual(rot.weights(layers: 7, step: 0, totalSteps: 10).activeExits, [3, 6])   // exit 0 has e = 0
        XCTAssertEqual(rot.weights(layers: 7, step: 1, totalSteps: 10).activeExits, [2, 5, 6])
        XCTAssertEqual(rot.weights(layers: 7, step: 2, totalSteps: 10).activeExits, [1, 4, 6])
        // Gradual: from the top down, all on by half-way.
        let grad = EarlyExitLoss(scale: 1, curriculum: .gradual)
        XCTAssertEqual(grad.weights(layers: 5, step: 0, totalSteps: 100).activeExits, [4])
        XCTAssertEqual(grad.weights(layers: 5, step: 10, totalSteps: 100).activeExits, [3, 4])
        XCTAssertEqual(grad.weights(layers: 5, step: 50, totalSteps: 100).activeExits, [1, 2, 3, 4])
        let w = grad.weights(layers: 5, step: 10, totalSteps: 100).weights
        XCTAssertEqual(w[3], 6.0 / 16, accuracy: 1e-15)
        XCTAssertEqual(w.reduce(0, +), 1, accuracy: 1e-15)
    }
}
