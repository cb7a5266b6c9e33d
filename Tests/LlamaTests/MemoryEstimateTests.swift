// The memory estimate follows the allocations: weights as Float32 (or as the load will hold them), one block's buffers, logits, the KV
// cache, training state; the check refuses what does not fit, and SystemMemory reads what the machine has.
import Checkpoint
import Foundation
import Llama
import Support
import TestSupport
import Training
import XCTest

final class MemoryEstimateTests: XCTestCase {
    let config = LlamaConfig(hiddenSize: 64, intermediateSize: 172, numHiddenLayers: 5, numAttentionHeads: 8,
                             numKeyValueHeads: 4, vocabSize: 512, tieWordEmbeddings: true)

    func testTermsFollowTheAllocations() throws {
        let e = MemoryEstimate.inference(config: config, batch: 4, context: 256, threads: 2)
        // The shipped stories260K has exactly these shapes: its parameters as Float32.
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        XCTAssertEqual(e.weights, model.parameterCount * 4)
        XCTAssertEqual(e.logits, 4 * 256 * 512 * 4)
        XCTAssertEqual(e.kvCache, 0)
        let perRow = 4 * 64 + 2 + 2 * 64 + 2 * 32 + 3 * 172
        let attentionTiles = 2 * (2 * 64 * 128 + 2 * 64)   // per thread: two 64 × 128 tiles and two row statistics
        XCTAssertEqual(e.activations, 4 * 256 * perRow * 4 + 4 * 256 * 64 * 8 + attentionTiles * 4)
        let g = MemoryEstimate.inference(config: config, batch: 1, context: 10, threads: 1, cachedPositions: 100)
        XCTAssertEqual(g.kvCache, 2 * 5 * 100 * 4 * 8 * 4)
        let lora = MemoryEstimate.training(config: config, batch: 4, context: 256, threads: 2, trainableParameters: 1000,
                                           separateTrainable: 1000, checkpointing: false)
        XCTAssertEqual(lora.training, 1000 * 16)
        let checkpointed = MemoryEstimate.training(config: config, batch: 4, context: 256, threads: 2, trainableParameters: 1000,
                                                   separateTrainable: 1000, checkpointing: true)
        XCTAssertLessThan(checkpointed.activations, lora.activations, "checkpointing keeps one layer's buffers")
        // Attention keeps a (B, H, T) log-sum-exp, no (B, H, T, T) probabilities: activations grow linearly with T.
        let short = MemoryEstimate.training(config: config, batch: 1, context: 1024, threads: 2, trainableParameters: 0,
                                            separateTrainable: 0, checkpointing: true)
        let long = MemoryEstimate.training(config: config, batch: 1, context: 4096, threads: 2, trainableParameters: 0,
                                           separateTrainable: 0, checkpointing: true)
        XCTAssertLessThanOrEqual(long.activations, 4 * short.activations)
        // Per token: the training pass's buffers (every layer's input, the final norm's rows and rstd, the recomputed
        // output, the stream's three gradients, dq/dAttn, dk/dv, the MLP's three), the block scratch's branch,
        // one block's buffers and its log-sum-exp.
        let pass = 6 * 64 + 1 + 2 * 64 + 64 + 3 * 64 + 2 * 64 + 2 * 32 + 3 * 172
        XCTAssertEqual(long.activations - short.activations, 3 * 1024 * 4 * (pass + 64 + perRow + 8))
        XCTAssertEqual(e.total, e.weights + e.activations + e.logits + e.runtime)
    }

    func testADistillationTeacherAddsItsWeightsRowsAndOneChunkOfLogits() throws {
        let teacher = LlamaConfig(hiddenSize: 96, intermediateSize: 256, numHiddenLayers: 7, numAttentionHeads: 8,
                                  numKeyValueHeads: 4, vocabSize: 512, tieWordEmbeddings: true)
        func estimate(_ teacher: LlamaConfig?) -> MemoryEstimate {
            MemoryEstimate.training(config: config, batch: 4, context: 1024, threads: 2, trainableParameters: 1000,
                                    separateTrainable: 1000, checkpointing: true, teacher: teacher)
        }
        let plain = estimate(nil), distilled = estimate(teacher)
        let M = LMHeadLoss.defaultChunkRows(vocab: 512), n = 4 * 1024
        XCTAssertEqual(distilled.logits - plain.logits, 4 * M * (512 + 96), "one chunk of the teacher's rows and logits")
        XCTAssertLessThan(distilled.logits - plain.logits, 4 * n * 512 / 4, "never its (N, V) logits")
        XCTAssertEqual(distilled.other - plain.other, 4 * (CheckpointValidation.parameterCount(teacher) ?? 0))
        let perRow = 4 * 96 + 2 + 2 * 96 + 2 * 48 + 3 * 256
        let attentionTiles = 2 * (2 * 64 * 128 + 2 * 64)
        XCTAssertEqual(distilled.activations - plain.activations, 4 * (n * perRow + n * 96 * 2 + attentionTiles))
    }

    func testAbsurdSizesSaturateAndAreRefused() {
        var huge = config
        huge.vocabSize = Int.max / 2
        let e = MemoryEstimate.inference(config: huge, batch: 1 << 20, context: 1 << 20, threads: 2)
        XCTAssertEqual(e.total, Int.max)
        XCTAssertThrowsError(try e.check(available: 1 << 30, job: "eval", model: URL(fileURLWithPath: "/m"))) { error in
            XCTAssertTrue("\(error)".hasPrefix("/m: eval needs about"), "\(error)")
        }
        XCTAssertNoThrow(try MemoryEstimate(weights: 10).check(available: 10, job: "eval", model: URL(fileURLWithPath: "/m")))
        XCTAssertNoThrow(try e.check(available: nil, job: "eval", model: URL(fileURLWithPath: "/m")), "unknown memory: allowed")
    }

    func testSystemMemoryReadsMeminfoAndSizes() {
        XCTAssertEqual(SystemMemory.memAvailable(meminfo: "MemTotal:       24684616 kB\nMemAvailable:   22514044 kB\n"), 22514044 * 1024)
        XCTAssertNil(SystemMemory.memAvailable(meminfo: "MemTotal: 1 kB\n"))
        XCTAssertGreaterThan(SystemMemory.available() ?? 0, 0, "this machine says what it has")
        XCTAssertEqual(SystemMemory.available(limit: 1000), 1000)
        XCTAssertEqual(SystemMemory.parseSize("8G"), 8 << 30)
        XCTAssertEqual(SystemMemory.parseSize("512m"), 512 << 20)
        XCTAssertEqual(SystemMemory.parseSize("1.5GiB".replacingOccurrences(of: "i", with: "")), 3 << 29)
        XCTAssertEqual(SystemMemory.parseSize("4096"), 4096)
        XCTAssertNil(SystemMemory.parseSize("lots"))
        XCTAssertNil(SystemMemory.parseSize("-1G"))
    }

    func testStoredBF16WeightsCountAtTheirFileSizeAndAFloat32LoadAtCopiesPlusFile() throws {
        let dir = Fixtures.projectRoot.appendingPathComponent("Tests/Fixtures/checkpoints/tied-bf16")
        let tensors = try CheckpointTensors(directory: dir)
        var matrices = 0, others = 0, file = 0
        for name in tensors.names {
            let e = try tensors.entry(name).entry
            file += e.end - e.begin
            if e.shape.count == 2 { matrices += e.end - e.begin } else { others += e.elementCount }
        }
        var stored = MemoryEstimate(activations: 1000), f32 = MemoryEstimate(activations: 1000)
        stored.setWeights(from: tensors, dtype: .stored)
        f32.setWeights(from: tensors, dtype: .f32)
        XCTAssertEqual(stored.weights, matrices + 4 * others)
        XCTAssertEqual(stored.loading, 2 * others, "the converted norms' file pages")
        XCTAssertEqual(f32.weights, 2 * file)
        XCTAssertEqual(f32.loading, file)
        // The load's file pages are gone before the job allocates: the total counts the larger of the two.
        XCTAssertEqual(f32.total, 2 * file + max(file, 1000))
        // What the loaded models hold (without the load's transient file pages).
        XCTAssertEqual(try LlamaModel.load(directory: dir).weightBytes, matrices + 4 * others)
        XCTAssertEqual(try LlamaModel.load(directory: dir, weightsDType: .f32).weightBytes, 2 * file)
    }
}
