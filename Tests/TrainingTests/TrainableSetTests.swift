// What a TrainableSet attaches, allocates and names.
import Checkpoint
import Foundation
import Llama
import Tensor
import TestSupport
import Training
import XCTest

final class TrainableSetTests: XCTestCase {
    static let config = LlamaConfig(hiddenSize: 24, intermediateSize: 40, numHiddenLayers: 4, numAttentionHeads: 4,
                                    numKeyValueHeads: 2, vocabSize: 50, tieWordEmbeddings: true)

    func testLoRAStartsAtTheBaseModelWithPEFTInitAndNames() throws {
        let model = LlamaModel.random(config: Self.config, seed: 1)
        let settings = LoRASettings(rank: 8, alpha: 16, projections: [.q, .down], layers: [1, 3], seed: 42)
        let set = try TrainableSet(model: model, configuration: .lora(settings))
        XCTAssertEqual(set.parameters.map(\.name), [
            WeightNames.peftLoRA(.q, layer: 1, isA: true), WeightNames.peftLoRA(.q, layer: 1, isA: false),
            WeightNames.peftLoRA(.down, layer: 1, isA: true), WeightNames.peftLoRA(.down, layer: 1, isA: false),
            WeightNames.peftLoRA(.q, layer: 3, isA: true), WeightNames.peftLoRA(.q, layer: 3, isA: false),
            WeightNames.peftLoRA(.down, layer: 3, isA: true), WeightNames.peftLoRA(.down, layer: 3, isA: false),
        ])
        XCTAssertEqual(set.parameters[0].name, "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight")
        let down = model.layers[1].down.lora!
        XCTAssertEqual(down.a.shape, [8, 40])
        XCTAssertEqual(down.b.shape, [24, 8])
        XCTAssertEqual(down.scale, 2)
        XCTAssertEqual(down.b.maxAbs, 0, "B starts at zero")
        let bound = TrainableSet.kaimingUniformBound(fanIn: 40)
        XCTAssertEqual(bound, 1 / Float(40).squareRoot(), accuracy: 1e-7)
        XCTAssertLessThanOrEqual(down.a.maxAbs, bound)
        XCTAssertGreaterThan(down.a.maxAbs, bound * 0.8, "A spans its range")
        XCTAssertNil(model.layers[0].q.lora)
        XCTAssertNil(model.layers[1].k.lora)
        // Frozen weights get no gradient buffers.
        XCTAssertNil(model.dEmbedding)
        XCTAssertNil(model.layers[1].q.dWeight)
        // Seeded: the same seed gives the same A.
        let again = LlamaModel.random(config: Self.config, seed: 1)
        _ = try TrainableSet(model: again, configuration: .lora(settings))
        assertEqualElements(again.layers[3].q.lora!.a.array, model.layers[3].q.lora!.a.array)
        // With B = 0 the adapted model computes what the base model does.
        let tokens: [Int32] = [1, 7, 3, 9]
        let base = LlamaModel.random(config: Self.config, seed: 1).forward(tokens: tokens, batch: 1, length: 4).logits
        XCTAssertEqual(model.forward(tokens: tokens, batch: 1, length: 4).logits.maxAbsDifference(base), 0)
    }

    func testPartialFinetuningTrainsTheLastLayersNormAndHead() throws {
        let model = LlamaModel.random(config: Self.config, seed: 2)
        let set = try TrainableSet(model: model, configuration: .partial(lastLayers: 2, of: 4))
        let names = Set(set.parameters.map(\.name))
        for l in [2, 3] {
            for p in Projection.allCases { XCTAssertTrue(names.contains(WeightNames.projection(p, layer: l))) }
            XCTAssertTrue(names.contains(WeightNames.inputNorm(layer: l)))
            XCTAssertTrue(names.contains(WeightNames.postAttentionNorm(layer: l)))
        }
        XCTAssertTrue(names.contains(WeightNames.finalNorm))
        XCTAssertTrue(names.contains(WeightNames.embedding), "tied: lm_head trains as the embedding matrix")
        XCTAssertEqual(names.count, 2 * 9 + 2)
        XCTAssertNil(model.layers[1].q.dWeight)
        XCTAssertNil(model.layers[1].dInputNorm)
        XCTAssertNotNil(model.layers[2].gate.dWeight)
        XCTAssertTrue(model.dEmbedding === set.parameter(named: WeightNames.embedding)!.gradient)
        XCTAssertEqual(set.scalarCount, 2 * (2 * 24 * 24 + 2 * 24 * 12 + 3 * 24 * 40 + 2 * 24) + 24 + 50 * 24)
    }

    func testUntiedHeadIsNamedLMHead() throws {
        var config = Self.config
        config.tieWordEmbeddings = false
        let model = LlamaModel.random(config: config, seed: 3)
        let set = try TrainableSet(model: model, configuration: TrainingConfiguration(trainsLMHead: true))
        XCTAssertEqual(set.parameters.map(\.name), [WeightNames.lmHead])
        XCTAssertNotNil(model.dUntiedLMHead)
        XCTAssertNil(model.dEmbedding)
    }

    func testZeroGradientsClearsEveryBuffer() throws {
        let model = LlamaModel.random(config: Self.config, seed: 4)
        var configuration = TrainingConfiguration.partial(lastLayers: 1, of: 4)
        configuration.lora = LoRASettings(rank: 2, alpha: 2)
        let set = try TrainableSet(model: model, configuration: configuration)
        for p in set.parameters { p.gradient.data.update(repeating: 3, count: p.gradient.count) }
        set.zeroGradients()
        XCTAssertTrue(set.parameters.allSatisfy { $0.gradient.maxAbs == 0 })
    }

    func testRejectsLayersOutsideTheModel() {
        let model = LlamaModel.random(config: Self.config, seed: 5)
        XCTAssertThrowsError(try TrainableSet(model: model, configuration: TrainingConfiguration(fullLayers: [4])))
        XCTAssertThrowsError(try TrainableSet(model: model, configuration: .lora(LoRASettings(rank: 4, alpha: 8, layers: [-1]))))
        XCTAssertThrowsError(try TrainableSet(model: model, configuration: .lora(LoRASettings(rank: 0, alpha: 8))))
    }

    func testConfigurationRoundTripsThroughJSON() throws {
        var configuration = TrainingConfiguration.partial(lastLayers: 2, of: 30)
        configuration.lora = LoRASettings(rank: 8, alpha: 16, projections: [.q, .v], layers: [0, 5], seed: 3)
        let data = try JSONEncoder().encode(configuration)
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("\"target_modules\":[\"q_proj\",\"v_proj\"]"))
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfiguration.self, from: data), configuration)
    }
}
