// The memory estimate made before loading: weights as they will be held, and the measured size of a loaded model.
import Checkpoint
import Foundation
import Llama
import Tensor
import TestSupport
import XCTest

final class MemoryEstimateTests: XCTestCase {
    func testStoredBF16WeightsCountAtTheirFileSizeAndAFloat32LoadAtCopiesPlusFile() throws {
        let dir = Fixtures.projectRoot.appendingPathComponent("Tests/Fixtures/checkpoints/tied-bf16")
        let tensors = try CheckpointTensors(directory: dir)
        var matrices = 0, others = 0, file = 0
        for name in tensors.names {
            let e = try tensors.entry(name).entry
            file += e.end - e.begin
            if e.shape.count == 2 { matrices += e.end - e.begin } else { others += e.elementCount }
        }
        XCTAssertEqual(MemoryEstimate.weightBytes(tensors: tensors, dtype: .stored), matrices + 6 * others)
        XCTAssertEqual(MemoryEstimate.weightBytes(tensors: tensors, dtype: .f32), 3 * file)
        // What the loaded models hold (without the load's transient file pages).
        XCTAssertEqual(try LlamaModel.load(directory: dir).weightBytes, matrices + 4 * others)
        XCTAssertEqual(try LlamaModel.load(directory: dir, weightsDType: .f32).weightBytes, 2 * file)
    }

    func testTrainingNeedsMoreThanAForwardPassAndCheckpointingLess() {
        let c = LlamaConfig(hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 4, numAttentionHeads: 4, vocabSize: 1000)
        let p = Parallelism(threads: 2)
        let forward = MemoryEstimate.forward(config: c, weights: 1000, batch: 4, length: 64, parallelism: p)
        let full = MemoryEstimate.loraTraining(config: c, weights: 1000, batch: 4, length: 64, rank: 8, checkpointing: false, parallelism: p)
        let checkpointed = MemoryEstimate.loraTraining(config: c, weights: 1000, batch: 4, length: 64, rank: 8, checkpointing: true, parallelism: p)
        XCTAssertLessThan(checkpointed.activations, full.activations)
        XCTAssertGreaterThan(full.trainable, 0)
        XCTAssertEqual(forward.trainable, 0)
        XCTAssertEqual(forward.weights, 1000)
    }
}
