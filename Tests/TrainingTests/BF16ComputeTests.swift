// A LoRA step under --compute bf16 (frozen projections and lm_head in bf16 through oneDNN, everything else Float32)
// against the same step in Float32: the loss and every adapter gradient within the bounds measured on SmolLM2-135M.
// Weights that train are never multiplied in bf16. Skipped, saying why, without bf16 units or oneDNN.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor
import TestSupport
import Training
import XCTest

final class BF16ComputeTests: XCTestCase {
    override func setUpWithError() throws {
        do { try ComputePrecision.bf16.checkAvailable() } catch { throw Fixtures.skip("bf16 compute unavailable: \(error)") }
    }

    func step(_ dir: URL, _ compute: ComputePrecision, batch b: Int, length t: Int,
              configuration: TrainingConfiguration) throws -> (loss: Double, gradients: Tensor, model: LlamaModel) {
        let model = try LlamaModel.load(directory: dir, parallelism: Parallelism(threads: 2))
        try model.compute(in: compute)
        var rng = SeededGenerator(seed: 11)
        let tokens = randomTokens(model, batch: b, length: t, &rng)
        let step = try randomLoRAStep(model, tokens: tokens, batch: b, length: t, configuration: configuration, &rng)
        return (step.loss, step.gradients, model)
    }

    func testSmolLM2LoRAGradientsUnderBF16ComputeStayWithinTheMeasuredBound() throws {
        let dir = try Fixtures.smolLM2()
        let lora = TrainingConfiguration(lora: LoRASettings(rank: 8, alpha: 16, seed: 1))
        let f32 = try step(dir, .f32, batch: 2, length: 64, configuration: lora)
        let bf16 = try step(dir, .bf16, batch: 2, length: 64, configuration: lora)
        XCTAssertGreaterThan(bf16.model.bf16CopyBytes, 0, "the products ran in bf16")
        let g = f32.gradients, d = bf16.gradients
        var num = 0.0, den = 0.0
        for i in 0..<g.count { num += Double(g[i] - d[i]) * Double(g[i] - d[i]); den += Double(g[i]) * Double(g[i]) }
        print("bf16 vs f32 SmolLM2 LoRA step: loss \(f32.loss) vs \(bf16.loss), gradients max |Δ| / max |g| "
              + "\(d.maxAbsDifference(g) / g.maxAbs), relative L2 \((num / den).squareRoot())")
        assertPinned("bf16ComputeLoss", abs(bf16.loss - f32.loss) / f32.loss, within: Tolerance.bf16ComputeLoss)
        assertPinned("bf16ComputeGradientL2", (num / den).squareRoot(), within: Tolerance.bf16ComputeGradientL2)
    }

    /// Partial finetuning: the trained layer and the trained tied lm_head are Float32 views; the frozen rest is bf16.
    func testWeightsThatTrainAreNeverMultipliedInBF16() throws {
        let dir = Fixtures.projectRoot.appendingPathComponent("Tests/Fixtures/checkpoints/tied-bf16")
        let layers = try LlamaModel.load(directory: dir).layers.count
        for computeFirst in [true, false] {
            let model = try LlamaModel.load(directory: dir, parallelism: Parallelism(threads: 2))
            let configuration = TrainingConfiguration(lora: LoRASettings(rank: 4, alpha: 8, layers: [0], seed: 1),
                                                      fullLayers: [layers - 1], trainsFinalNorm: true, trainsLMHead: true)
            if computeFirst { try model.compute(in: .bf16) }
            _ = try TrainableSet(model: model, configuration: configuration)
            if !computeFirst { try model.compute(in: .bf16) }
            XCTAssertNil(model.lmHead.bf16Packs, "the trained tied lm_head (compute set \(computeFirst ? "before" : "after") training)")
            XCTAssertNil(model.layers[layers - 1].down.weight.bf16Packs, "a trained layer")
            XCTAssertNotNil(model.layers[0].down.weight.bf16Packs, "a frozen layer with LoRA")
        }
    }
}
