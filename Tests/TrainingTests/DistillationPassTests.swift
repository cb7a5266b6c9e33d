// The training pass with a teacher: every trainable tensor against finite differences of the distillation loss
// computed from the inference forwards' whole logits (tiny random models: LoRA, a full layer, the final norm and
// the head at once; a teacher of another width and depth, or of the same width with the hidden term); α = 0
// against the plain pass bit for bit; micro-batches against the whole batch; the early exits below the last keep
// the plain cross-entropy; and the stories260K student (layers 2-3 cut) against PyTorch in float64.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor
import TestSupport
import Training
import XCTest

final class DistillationPassTests: XCTestCase {
    /// A one-layer teacher for `TrainingPassGradientTests.tinyModel` (C = 10, V = 13), its matrices scaled like the
    /// student's so that its distribution is far from uniform.
    static func tinyTeacher(width: Int, seed: UInt64) -> LlamaModel {
        let config = LlamaConfig(hiddenSize: width, intermediateSize: 9, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 1,
                                 headDim: 4, ropeTheta: 100, vocabSize: 13, tieWordEmbeddings: true)
        let model = LlamaModel.random(config: config, seed: seed)
        var matrices = [model.embedding.float32!]
        for l in model.layers { for p in Projection.allCases { matrices.append(l.linear(p).weight.float32!) } }
        for t in matrices { for i in 0..<t.count { t[i] *= 15 } }
        return model
    }

    /// Logits (N, V) and final-normed rows (N, C) of `model` through the inference forward.
    static func inference(_ model: LlamaModel, tokens: [Int32], batch b: Int, length t: Int) -> (logits: Tensor, rows: Tensor) {
        let C = model.config.hiddenSize, rows = Tensor(zeros: [b * t, C])
        let logits = model.forward(tokens: tokens, batch: b, length: t, observingHiddenStates: { l, h in
            if l == model.layers.count { model.normalizeFinal(h, rows: b * t, into: rows.data) }
        })
        return (logits, rows)
    }

    /// Every trainable tensor's gradient from the pass against central differences of the distillation loss in
    /// Double over the inference forwards' logits.
    func check(teacher: LlamaModel, alpha: Double, tau: Double, hiddenWeight: Double = 0, line: UInt = #line) throws {
        let model = TrainingPassGradientTests.tinyModel(tied: false, seed: 1), V = model.config.vocabSize
        let (set, tokens, targets, b, t) = try TrainingPassGradientTests.trainableBatch(model: model,
                                                                                       configuration: TrainingPassGradientTests.everything)
        let distillation = try Distillation(teacher: teacher, student: model.config, weight: alpha, temperature: tau,
                                            hiddenWeight: hiddenWeight)
        let fixed = Self.inference(teacher, tokens: tokens, batch: b, length: t)
        func loss() -> Double {
            let student = Self.inference(model, tokens: tokens, batch: b, length: t)
            return DistillationTests.referenceLoss(student: student.logits, teacher: fixed.logits, targets: targets, vocab: V,
                                                   distillation: distillation, studentRows: student.rows, teacherRows: fixed.rows)
        }
        let pass = LlamaTrainingPass(model: model, batch: b, length: t)
        set.zeroGradients()
        let tally = pass.run(tokens: tokens, targets: targets, distillation: distillation)
        XCTAssertEqual(tally.count, b * (t - 1) - 1, line: line)
        XCTAssertEqual(pass.distillationTally?.count, tally.count, line: line)
        let what = "α \(alpha), τ \(tau), β \(hiddenWeight), teacher C \(teacher.config.hiddenSize)"
        assertPinned("distillation.loss", abs(tally.mean - loss()), within: Tolerance.distillationLoss, "\(what): pass vs Double", line: line)
        for p in set.parameters {
            GradientCheck.assertClose("\(p.name), \(what)", parameter: p.value.data, count: p.value.count, analytic: p.gradient.data,
                                      epsilon: 1e-2, tolerance: Tolerance.gradientCheckModel, loss: loss, line: line)
        }
    }

    func testGradientsWithATeacherOfAnotherWidthAndDepth() throws {
        let teacher = Self.tinyTeacher(width: 12, seed: 60)
        for (alpha, tau) in DistillationTests.settings { try check(teacher: teacher, alpha: alpha, tau: tau) }
    }

    func testGradientsWithTheHiddenTerm() throws {
        try check(teacher: Self.tinyTeacher(width: 10, seed: 61), alpha: 0.5, tau: 2, hiddenWeight: 0.7)
    }

    func testNoWeightIsThePlainPassBitForBit() throws {
        let ref = try Reference()
        let teacher = try LlamaModel.load(directory: ref.modelDirectory)
        func gradients(_ distillation: Distillation?) throws -> (Double, [Tensor]) {
            try ReferenceGradientTests.loraGradients(ref) { $0.run(tokens: $1, targets: $2, distillation: distillation) }
        }
        let (plainLoss, plain) = try gradients(nil)
        let config = try LlamaModel.load(directory: ref.modelDirectory).config
        let (loss, distilled) = try gradients(try Distillation(teacher: teacher, student: config, weight: 0, temperature: 2))
        XCTAssertEqual(loss, plainLoss)
        for (p, q) in zip(plain, distilled) { assertEqualElements(p.array, q.array) }
    }

    func testAccumulatedMicroBatchesEqualTheWholeBatch() throws {
        let model = TrainingPassGradientTests.tinyModel(tied: true, seed: 2)
        let set = try TrainableSet(model: model, configuration: TrainingPassGradientTests.everything)
        let distillation = try Distillation(teacher: Self.tinyTeacher(width: 10, seed: 62), student: model.config, weight: 0.5,
                                            temperature: 2, hiddenWeight: 0.3)
        var rng = SeededGenerator(seed: 5)
        let b = 3, t = 6
        let tokens = (0..<b * t).map { _ in Int32.random(in: 0..<13, using: &rng) }
        var targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: b, length: t)
        for i in 0..<4 { targets[i] = NextTokenLoss.ignoreIndex }   // uneven counts: 1, 5, 5
        let whole = LlamaTrainingPass(model: model, batch: b, length: t)
        set.zeroGradients()
        let wholeTally = whole.run(tokens: tokens, targets: targets, distillation: distillation)
        let expected = set.gradients.copy()
        // One sequence at a time (the teacher runs on each), normalised by the step's counted targets.
        let total = targets.filter { $0 != NextTokenLoss.ignoreIndex }.count
        let single = LlamaTrainingPass(model: model, batch: 1, length: t)
        set.zeroGradients()
        var tally = LossTally()
        for s in 0..<b {
            tally.add(single.run(tokens: Array(tokens[s * t..<(s + 1) * t]), targets: Array(targets[s * t..<(s + 1) * t]),
                                 lossNormalizer: total, distillation: distillation))
        }
        XCTAssertEqual(tally.mean, wholeTally.mean, accuracy: 1e-6)
        assertPinned("accumulation.gradient", TrainingCoreTests.relativeDifference(set.gradients, expected),
                     within: Tolerance.accumulation, "distilled, relative L2")
    }

    func testEarlierExitsKeepThePlainCrossEntropy() throws {
        let model = TrainingPassGradientTests.tinyModel(tied: false, seed: 3, layers: 3)
        let distillation = try Distillation(teacher: Self.tinyTeacher(width: 12, seed: 63), student: model.config, weight: 1,
                                            temperature: 2)
        var rng = SeededGenerator(seed: 6)
        let b = 2, t = 5
        let tokens = (0..<b * t).map { _ in Int32.random(in: 0..<13, using: &rng) }
        let targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: b, length: t)
        let exits = ExitWeights([1, 2, 3])
        let pass = LlamaTrainingPass(model: model, batch: b, length: t)
        _ = pass.loss(tokens: tokens, targets: targets, exits: exits)
        let plain = pass.exitTallies
        let lastOnly = pass.forward(tokens: tokens, targets: targets, distillation: distillation)
        let total = pass.forward(tokens: tokens, targets: targets, exits: exits, distillation: distillation)
        for l in 0..<2 { XCTAssertEqual(pass.exitTallies[l]?.sum, plain[l]?.sum, "exit \(l)") }
        XCTAssertEqual(pass.exitTallies[2]?.sum, lastOnly.sum, "the last exit is distilled")
        XCTAssertNotEqual(lastOnly.sum, plain[2]?.sum)
        let expected = zip(exits.weights, [plain[0]!.sum, plain[1]!.sum, lastOnly.sum]).map { $0 * $1 }.reduce(0, +)
        XCTAssertEqual(total.sum, expected, accuracy: 1e-9 * abs(expected))
        XCTAssertEqual(pass.distillationTally?.meanCrossEntropy ?? .nan, plain[2]!.mean, accuracy: 1e-12)
    }

    // MARK: reference

    func testCutStoriesStudentMatchesPyTorch() throws {
        let ref = try Reference("distillation")
        let teacher = try LlamaModel.load(directory: ref.modelDirectory), base = try LlamaModel.load(directory: ref.modelDirectory)
        let cut = (ref.value("cut") as! [NSNumber]).map(\.intValue)
        let kept = base.layers.indices.filter { !cut.contains($0) }
        var config = base.config
        config.numHiddenLayers = kept.count
        let student = LlamaModel(config: config, embedding: base.embedding, layers: kept.map { base.layers[$0] },
                                 finalNorm: base.finalNorm, lmHead: base.untiedLMHead)
        let set = try TrainableSet(model: student, configuration: .partial(lastLayers: 1, of: kept.count))
        XCTAssertEqual(Set(set.parameters.map(\.name)), Set(ref.value("trainable") as! [String]))
        XCTAssertEqual(Distillation.hiddenEpsilon, ref.double("hidden_epsilon"))
        let distillation = try Distillation(teacher: teacher, student: config, weight: ref.double("alpha"),
                                            temperature: ref.double("temperature"), hiddenWeight: ref.double("hidden_weight"))
        let rows = ref.idRows("input_ids")
        let b = rows.count, t = rows[0].count, tokens = rows.flatMap { $0 }
        let targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: b, length: t)
        let pass = LlamaTrainingPass(model: student, batch: b, length: t)
        set.zeroGradients()
        let tally = pass.run(tokens: tokens, targets: targets, distillation: distillation)
        XCTAssertEqual(tally.count, Int(ref.double("count")))
        let parts = try XCTUnwrap(pass.distillationTally)
        var worstLoss = abs(tally.mean - ref.double("loss"))
        for (ours, key) in [(parts.meanCrossEntropy, "cross_entropy"), (parts.meanDivergence, "divergence"), (parts.meanHidden, "hidden")] {
            worstLoss = max(worstLoss, abs(ours - ref.double(key)))
        }
        assertPinned("distillation.reference.loss", worstLoss, within: Tolerance.distillationReferenceLoss, "loss and its parts")
        var worst = (0.0, "")
        for name in ref.tensors.names {
            let expected = try ref.tensor(name), ours = try XCTUnwrap(set.parameter(named: String(name.dropFirst("grad.".count))))
            let err = ReferenceGradientTests.relativeError(ours.gradient, expected)
            if err >= worst.0 { worst = (err, name) }
        }
        XCTAssertEqual(ref.tensors.names.count, 5)
        assertPinned("distillation.reference.gradient", worst.0, within: Tolerance.distillationReferenceGradient, worst.1)
    }
}
