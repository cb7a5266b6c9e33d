// Model-level gradients on the real stories260K checkpoint against PEFT/transformers (float64 reference):
// LoRA r=4, alpha=8 on all seven projections from `lora.init`, partial finetuning of the last layer + final
// norm + tied lm_head, and gradient checkpointing against the plain pass.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor
import TestSupport
import Training
import XCTest

final class ReferenceGradientTests: XCTestCase {
    /// The reference inputs as (tokens, targets, B, T).
    static func batch(_ ref: Reference) -> (tokens: [Int32], targets: [Int32], b: Int, t: Int) {
        let rows = ref.idRows("input_ids")
        let b = rows.count, t = rows[0].count
        let tokens = rows.flatMap { $0 }
        return (tokens, NextTokenLoss.shiftedTargets(tokens: tokens, batch: b, length: t), b, t)
    }

    /// A fresh model with LoRA r=4, alpha=8 on every projection, A and B set to `lora.init`.
    static func loraModel(_ ref: Reference) throws -> (LlamaModel, TrainableSet) {
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        let r = Int(ref.double("lora.r")), alpha = Float(ref.double("lora.alpha"))
        XCTAssertEqual((ref.value("lora.targets") as? [String]).map(Set.init), Set(Projection.allCases.map(\.rawValue)))
        let set = try TrainableSet(model: model, configuration: .lora(LoRASettings(rank: r, alpha: alpha)))
        for p in set.parameters {
            let initial = try ref.tensor("lora.init." + p.name)
            XCTAssertEqual(initial.shape, p.value.shape, p.name)
            p.value.data.update(from: initial.data, count: initial.count)
        }
        return (model, set)
    }

    /// The loss and every parameter's gradient after one `run` of a fresh pass on a fresh `loraModel`.
    static func loraGradients(_ ref: Reference, _ run: (LlamaTrainingPass, [Int32], [Int32]) -> LossTally) throws -> (Double, [Tensor]) {
        let (tokens, targets, b, t) = batch(ref)
        let (model, set) = try loraModel(ref)
        let pass = LlamaTrainingPass(model: model, batch: b, length: t)
        set.zeroGradients()
        let loss = run(pass, tokens, targets).mean
        return (loss, set.parameters.map { $0.gradient.copy() })
    }

    /// max |ours − reference| / max |reference|.
    static func relativeError(_ ours: Tensor, _ reference: Tensor) -> Double {
        Double(ours.maxAbsDifference(reference) / reference.maxAbs)
    }

    func testLoRAGradientsMatchPEFT() throws {
        let ref = try Reference()
        let (model, set) = try Self.loraModel(ref)
        let (tokens, targets, b, t) = Self.batch(ref)
        XCTAssertEqual(set.parameters.count, 2 * 7 * model.layers.count)
        let pass = LlamaTrainingPass(model: model, batch: b, length: t)
        set.zeroGradients()
        let loss = pass.run(tokens: tokens, targets: targets).mean
        assertPinned("lora.loss", abs(loss - ref.double("lora.loss")), within: Tolerance.trainingLoss)
        let worst = try Self.assertGradientsMatch(set, ref, prefix: "lora.grad.", key: "lora.gradient")
        print("LoRA: loss \(loss) (reference \(ref.double("lora.loss"))), worst gradient error \(worst.0) at \(worst.1)")
        // Frozen weights got no gradient buffer.
        XCTAssertNil(model.dEmbedding)
        XCTAssertNil(model.dFinalNorm)
        XCTAssertTrue(model.layers.allSatisfy { l in l.dInputNorm == nil && Projection.allCases.allSatisfy { l.linear($0).dWeight == nil } })
    }

    func testPartialFinetuningGradientsMatchTransformers() throws {
        let ref = try Reference()
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        let set = try TrainableSet(model: model, configuration: .partial(lastLayers: 1, of: model.layers.count))
        XCTAssertEqual(Set(set.parameters.map(\.name)), Set(ref.value("partial.trainable") as! [String]))
        let (tokens, targets, b, t) = Self.batch(ref)
        let pass = LlamaTrainingPass(model: model, batch: b, length: t)
        set.zeroGradients()
        let loss = pass.run(tokens: tokens, targets: targets).mean
        assertPinned("partial.loss", abs(loss - ref.double("partial.loss")), within: Tolerance.trainingLoss)
        let worst = try Self.assertGradientsMatch(set, ref, prefix: "partial.grad.", key: "partial.gradient")
        print("partial: loss \(loss), worst gradient error \(worst.0) at \(worst.1)")
    }

    func testGradientsAccumulateUntilZeroed() throws {
        let ref = try Reference()
        let (model, set) = try Self.loraModel(ref)
        let (tokens, targets, b, t) = Self.batch(ref)
        let pass = LlamaTrainingPass(model: model, batch: b, length: t)
        set.zeroGradients()
        _ = pass.run(tokens: tokens, targets: targets)
        let once = set.parameters.map { $0.gradient.copy() }
        _ = pass.run(tokens: tokens, targets: targets)
        var worst = 0.0
        for (p, g) in zip(set.parameters, once) {
            for i in 0..<g.count { worst = max(worst, Double(abs(p.gradient[i] - 2 * g[i]) / max(1, abs(g[i])))) }
        }
        assertPinned("accumulation.twice", worst, within: Tolerance.accumulateTwice, "two passes = 2 × one")
        set.zeroGradients()
        XCTAssertTrue(set.parameters.allSatisfy { $0.gradient.maxAbs == 0 })
    }

    func testCheckpointingGivesTheSameGradients() throws {
        let ref = try Reference()
        let (tokens, targets, b, t) = Self.batch(ref)
        // LoRA and partial finetuning together, so that every kind of gradient is compared.
        func gradients(checkpointing: Bool) throws -> (Double, [String: Tensor]) {
            let model = try LlamaModel.load(directory: ref.modelDirectory)
            var config = TrainingConfiguration.partial(lastLayers: 2, of: model.layers.count)
            config.lora = LoRASettings(rank: 4, alpha: 8, layers: [0, 1, 2], seed: 5)
            let set = try TrainableSet(model: model, configuration: config)
            // Give B non-zero values so that every LoRA gradient is non-trivial.
            var rng = SeededGenerator(seed: 9)
            for p in set.parameters where p.name.hasSuffix("lora_B.weight") {
                for i in 0..<p.value.count { p.value[i] = Float.random(in: -0.05...0.05, using: &rng) }
            }
            let pass = LlamaTrainingPass(model: model, batch: b, length: t, checkpointing: checkpointing)
            set.zeroGradients()
            let loss = pass.run(tokens: tokens, targets: targets).mean
            return (loss, Dictionary(uniqueKeysWithValues: set.parameters.map { ($0.name, $0.gradient.copy()) }))
        }
        let (plainLoss, plain) = try gradients(checkpointing: false)
        let (checkpointedLoss, checkpointed) = try gradients(checkpointing: true)
        XCTAssertEqual(plainLoss, checkpointedLoss)
        XCTAssertEqual(Set(plain.keys), Set(checkpointed.keys))
        XCTAssertGreaterThan(plain.count, 20)
        var worst = (0.0, "")
        for (name, g) in plain {
            XCTAssertGreaterThan(g.maxAbs, 0, name)
            let err = Double(g.maxAbsDifference(checkpointed[name]!) / g.maxAbs)
            if err >= worst.0 { worst = (err, name) }
        }
        assertPinned("checkpointing.gradient", worst.0, within: Tolerance.checkpointing, worst.1)
    }

    /// Checks every parameter's gradient against `prefix + name` in the reference; returns the worst error.
    /// `tolerance` overrides the pinned `Tolerance.gradient` (the LayerSkip reference has its own).
    static func assertGradientsMatch(_ set: TrainableSet, _ ref: Reference, prefix: String, key: String, tolerance: Double? = nil,
                                     file: StaticString = #filePath, line: UInt = #line) throws -> (Double, String) {
        var worst = (0.0, "")
        for p in set.parameters {
            let expected = try ref.tensor(prefix + p.name)
            if expected.maxAbs == 0 {   // e.g. a layer every sample skips: exactly nothing
                XCTAssertEqual(p.gradient.maxAbs, 0, p.name, file: file, line: line)
                continue
            }
            let err = relativeError(p.gradient, expected)
            if err > worst.0 { worst = (err, p.name) }
        }
        assertPinned(key, worst.0, within: tolerance ?? Tolerance.gradient, worst.1, file: file, line: line)
        return worst
    }
}
