// Random-initialised weights: the model in memory and the checkpoint streamed to disk are one draw (the file's
// rounded to its dtype), distributed as transformers initialises a Llama; the benchmark's sharded bf16 checkpoints
// pass the validation every command makes, load, and are the same file whatever the thread count.
import Checkpoint
import Foundation
import Llama
import Tensor
import TestSupport
import XCTest

final class RandomWeightsTests: XCTestCase {
    static let config = LlamaConfig(hiddenSize: 24, intermediateSize: 40, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
                                    vocabSize: 50, tieWordEmbeddings: false, attentionBias: true, mlpBias: true)

    /// `x` stored as `dtype` and read back.
    static func rounded(_ x: Float, to dtype: SafetensorsDType) -> Float {
        var value = x, half: UInt16 = 0, back: Float = 0
        switch dtype {
        case .BF16: Kernels.f32ToBF16(&value, &half, 1); Kernels.bf16ToF32(&half, &back, 1)
        case .F16: Kernels.f32ToF16(&value, &half, 1); Kernels.f16ToF32(&half, &back, 1)
        default: back = x
        }
        return back
    }

    func testTheModelAndTheCheckpointOfASeedHoldTheSameWeights() throws {
        let scratch = try Fixtures.temporaryDirectory("random-weights")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let inMemory = Dictionary(uniqueKeysWithValues: LlamaModel.random(config: Self.config, seed: 11, parallelism: Parallelism(threads: 2)).namedWeights())
        for dtype in [SafetensorsDType.F32, .BF16, .F16] {
            let dir = scratch.appendingPathComponent(dtype.rawValue)
            try LlamaModel.writeRandomCheckpoint(config: Self.config, to: dir, dtype: dtype, seed: 11, parallelism: .serial)
            let written = try LlamaModel.load(directory: dir).namedWeights()
            XCTAssertEqual(Set(written.map(\.0)), Set(inMemory.keys), "\(dtype): the same tensors")
            for (name, tensor) in written {
                guard let expected = inMemory[name], expected.shape == tensor.shape else { XCTFail("\(dtype) \(name): shape"); continue }
                let differing = (0..<tensor.count).filter { tensor[$0] != Self.rounded(expected[$0], to: dtype) }
                XCTAssertEqual(differing.count, 0, "\(dtype) \(name): \(differing.count) of \(tensor.count) values differ, first at \(differing.first ?? 0)")
            }
        }
        let other = LlamaModel.random(config: Self.config, seed: 12, parallelism: .serial).namedWeights()
        XCTAssertNotEqual(other[0].1[0], inMemory[other[0].0]![0], "another seed draws other weights")
    }

    func testMatricesAreNormalWithTransformersStandardDeviationNormsOneBiasesZero() {
        let config = LlamaConfig(hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 1, numAttentionHeads: 4, vocabSize: 4096,
                                 attentionBias: true)
        let model = LlamaModel.random(config: config, seed: 5, parallelism: .serial)
        let e = model.embedding.float32!
        let n = Double(e.count)
        let mean = (0..<e.count).reduce(0.0) { $0 + Double(e[$1]) } / n
        let std = ((0..<e.count).reduce(0.0) { $0 + pow(Double(e[$1]) - mean, 2) } / n).squareRoot()
        let withinOneStd = Double((0..<e.count).filter { abs(e[$0]) < 0.02 }.count) / n
        // 262 144 draws, measured off by 3.6e-5 (mean), 4.8e-5 (std) and 1.0e-3 (the share within 1σ, 0.6827 for a
        // normal; 0.577 for the uniform of the same std): about one sampling error each.
        XCTAssertEqual(mean, 0, accuracy: 1.2e-4, "mean")
        XCTAssertEqual(std, 0.02, accuracy: 1.5e-4, "standard deviation")
        XCTAssertEqual(withinOneStd, 0.6827, accuracy: 3e-3, "share within one standard deviation")
        let layer = model.layers[0]
        XCTAssertTrue((0..<layer.inputNorm.count).allSatisfy { layer.inputNorm[$0] == 1 && model.finalNorm[$0] == 1 }, "norm weights 1")
        let bias = layer.q.bias!
        XCTAssertTrue((0..<bias.count).allSatisfy { bias[$0] == 0 }, "biases 0")
    }

    func testAShardedBF16CheckpointValidatesLoadsAndIsTheSameFileWhateverTheThreads() throws {
        let config = LlamaConfig(hiddenSize: 64, intermediateSize: 160, numHiddenLayers: 3, numAttentionHeads: 4, numKeyValueHeads: 2,
                                 vocabSize: 300, tieWordEmbeddings: false, attentionBias: true)
        let scratch = try Fixtures.temporaryDirectory("random-checkpoint")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let one = scratch.appendingPathComponent("one"), two = scratch.appendingPathComponent("two")
        try LlamaModel.writeRandomCheckpoint(config: config, to: one, maxShardBytes: 40_000, seed: 3, parallelism: Parallelism(threads: 1))
        try LlamaModel.writeRandomCheckpoint(config: config, to: two, maxShardBytes: 40_000, seed: 3, parallelism: Parallelism(threads: 2))
        let checkpoint = try CheckpointValidation.validate(one)
        XCTAssertGreaterThan(checkpoint.tensors.files.count, 1, "sharded")
        XCTAssertEqual(CheckpointValidation.parameterCount(checkpoint.config), try LlamaModel.load(directory: one).parameterCount)
        for file in checkpoint.tensors.files {
            let name = file.url.lastPathComponent
            XCTAssertEqual(try Data(contentsOf: file.url), try Data(contentsOf: two.appendingPathComponent(name)), name)
        }
        let model = try LlamaModel.load(checkpoint)
        XCTAssertEqual(model.embedding.element, .bf16, "kept as stored")
        let logits = model.forward(tokens: [1, 2, 3, 4], batch: 1, length: 4).logits
        XCTAssertTrue((0..<logits.count).allSatisfy { logits.data[$0].isFinite })
    }

    func testADTypeNoCheckpointIsWrittenInIsRefusedInOneLine() throws {
        let dir = try Fixtures.temporaryDirectory("random-i8")
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try LlamaModel.writeRandomCheckpoint(config: Self.config, to: dir.appendingPathComponent("out"), dtype: .I8)) {
            XCTAssertTrue("\($0)".contains("f32, bf16 or f16"), "\($0)")
        }
    }
}
