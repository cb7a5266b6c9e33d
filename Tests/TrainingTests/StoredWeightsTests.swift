// 16-bit weights kept as stored (mapped, widened block by block inside the GEMMs) against the same checkpoint
// converted to Float32 on load: logits, loss and every trainable gradient. The widening is exact and each GEMM output
// element stays one sgemm dot product over the whole shared dimension (work is split along output columns only). Where
// both paths make the same sgemm call on the same shapes (products below the threaded and widening-block sizes) the
// results are bit-identical by construction and tested so; where the widened path cuts a product into column blocks
// the Float32 path does not cut, OpenBLAS's kernel set decides the last bits (Haswell, Zen and Prescott round a block's
// edge columns differently from the whole), and the test asserts the bound measured over the kernel sets.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor
import TestSupport
import Training
import XCTest

final class StoredWeightsTests: XCTestCase {
    static let fixtures = Fixtures.projectRoot.appendingPathComponent("Tests/Fixtures/checkpoints")

    /// Logits of a forward pass and the gradients of a LoRA (+ optionally partial-finetuning) step.
    func run(_ dir: URL, _ dtype: WeightsDType, threads: Int, batch b: Int, length t: Int,
             configuration: TrainingConfiguration) throws -> (logits: Tensor, loss: Double, gradients: Tensor, model: LlamaModel) {
        let model = try LlamaModel.load(directory: dir, weightsDType: dtype, parallelism: Parallelism(threads: threads))
        var rng = SeededGenerator(seed: 11)
        let tokens = randomTokens(model, batch: b, length: t, &rng)
        let logits = model.forward(tokens: tokens, batch: b, length: t).logits
        let step = try randomLoRAStep(model, tokens: tokens, batch: b, length: t, configuration: configuration, &rng)
        return (logits, step.loss, step.gradients, model)
    }

    /// `blockedProducts`: the model's products are large enough for the widened path to cut them into blocks.
    func assertSame(_ dir: URL, element: WeightElement, threads: Int, batch: Int = 2, length: Int = 12,
                    configuration: TrainingConfiguration, blockedProducts: Bool = false,
                    file: StaticString = #filePath, line: UInt = #line) throws {
        let stored = try run(dir, .stored, threads: threads, batch: batch, length: length, configuration: configuration)
        let f32 = try run(dir, .f32, threads: threads, batch: batch, length: length, configuration: configuration)
        XCTAssertEqual(stored.model.layers[0].q.weight.element, element, "kept as stored", file: file, line: line)
        XCTAssertEqual(f32.model.layers[0].q.weight.element, .f32, file: file, line: line)
        if configuration.fullLayers.isEmpty && !configuration.trainsLMHead {
            XCTAssertLessThan(stored.model.weightBytes, f32.model.weightBytes * 6 / 10, file: file, line: line)
        }
        let dLogits = stored.logits.maxAbsDifference(f32.logits), dGrad = stored.gradients.maxAbsDifference(f32.gradients)
        print("stored vs f32 \(dir.lastPathComponent), \(threads) threads: logits |Δ| \(dLogits), loss |Δ| \(abs(stored.loss - f32.loss)), gradients |Δ| \(dGrad) (largest \(f32.gradients.maxAbs))")
        if blockedProducts {
            assertPinned("storedWeightsLogits", Double(dLogits), within: Tolerance.storedWeightsLogits, file: file, line: line)
            assertPinned("storedWeightsLoss", abs(stored.loss - f32.loss), within: Tolerance.storedWeightsLoss, file: file, line: line)
            assertPinned("storedWeightsGradient", Double(dGrad) / Double(f32.gradients.maxAbs),
                         within: Tolerance.storedWeightsGradient, file: file, line: line)
        } else {
            XCTAssertEqual(dLogits, 0, "logits", file: file, line: line)
            XCTAssertEqual(stored.loss, f32.loss, "loss", file: file, line: line)
            XCTAssertEqual(dGrad, 0, "gradients", file: file, line: line)
        }
        XCTAssertGreaterThan(f32.gradients.maxAbs, 0, file: file, line: line)
    }

    func testBF16TiedCheckpointGivesTheFloat32PathsLogitsAndLoRAGradients() throws {
        for threads in [1, 2] {
            try assertSame(Self.fixtures.appendingPathComponent("tied-bf16"), element: .bf16, threads: threads,
                           configuration: TrainingConfiguration(lora: LoRASettings(rank: 4, alpha: 8, seed: 1)))
        }
    }

    func testShardedF16UntiedCheckpointGivesTheFloat32PathsLogitsAndLoRAGradients() throws {
        for threads in [1, 2] {
            try assertSame(Self.fixtures.appendingPathComponent("untied-f16-sharded"), element: .f16, threads: threads,
                           configuration: TrainingConfiguration(lora: LoRASettings(rank: 4, alpha: 8, seed: 1)))
        }
    }

    /// A trained layer and the tied lm_head start from the widened stored values and become Float32 views.
    func testDroppingTheMappedPagesKeepsTheWeightsReadable() throws {
        let model = try LlamaModel.load(directory: Self.fixtures.appendingPathComponent("tied-bf16"))
        let tokens: [Int32] = [1, 5, 9, 2, 7, 3, 8, 4]
        let before = model.forward(tokens: tokens, batch: 1, length: tokens.count).logits
        model.dropResidentWeightPages()
        let after = model.forward(tokens: tokens, batch: 1, length: tokens.count).logits
        XCTAssertEqual(after.maxAbsDifference(before), 0, "pages are read again from the file")
    }

    func testPartialFinetuningFromBF16WidensTheTrainedWeights() throws {
        let dir = Self.fixtures.appendingPathComponent("tied-bf16")
        let layers = try LlamaModel.load(directory: dir).layers.count
        let configuration = TrainingConfiguration(lora: LoRASettings(rank: 4, alpha: 8, layers: [0], seed: 1),
                                                  fullLayers: [layers - 1], trainsFinalNorm: true, trainsLMHead: true)
        try assertSame(dir, element: .bf16, threads: 2, configuration: configuration)
        let model = try run(dir, .stored, threads: 1, batch: 1, length: 4, configuration: configuration).model
        XCTAssertEqual(model.embedding.element, .f32, "the trained tied embedding is a Float32 view")
        XCTAssertEqual(model.layers[layers - 1].down.weight.element, .f32)
        XCTAssertEqual(model.layers[0].down.weight.element, .bf16, "frozen weights stay as stored")
    }

    func testSmolLM2InBF16GivesTheFloat32PathsLogitsAndLoRAGradients() throws {
        let dir = try Fixtures.smolLM2()
        try assertSame(dir, element: .bf16, threads: 2, batch: 2, length: 64,
                       configuration: TrainingConfiguration(lora: LoRASettings(rank: 8, alpha: 16, seed: 1)), blockedProducts: true)
    }

    /// The GEMM faces on their own, with shapes that leave ragged blocks (O, I not multiples of 16) and sizes that
    /// take the threaded path. The smallest is one sgemm call in both paths (bit-identical by construction); the
    /// others the widened path cuts into column blocks, so their last bits follow the kernel set (bound measured).
    func testWidenedGemmsEqualTheFloat32GemmsOnRaggedShapes() {
        for (n, O, I) in [(3, 37, 29), (67, 1030, 77), (130, 45, 2051)] {
            var rng = SeededGenerator(seed: UInt64(n * O))
            let w = Tensor(shape: [O, I], values: (0..<O * I).map { _ in Float.random(in: -1...1, using: &rng) })
            let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: O * I)
            defer { halves.deallocate() }
            Kernels.f32ToBF16(w.data, halves, O * I)
            Kernels.bf16ToF32(halves, w.data, O * I)   // w now holds exactly the bf16 values
            let stored = Weight(halves: halves, element: .bf16, shape: [O, I], owner: w)
            let x = Tensor(shape: [n, I], values: (0..<n * I).map { _ in Float.random(in: -1...1, using: &rng) })
            let dy = Tensor(shape: [n, O], values: (0..<n * O).map { _ in Float.random(in: -1...1, using: &rng) })
            for threads in [1, 2, 3] {
                let p = Parallelism(threads: threads)
                let (y1, y2) = (Tensor(zeros: [n, O]), Tensor(zeros: [n, O]))
                Gemm.linear(x.data, rows: n, weight: Weight(w), into: y1.data, parallelism: p)
                Gemm.linear(x.data, rows: n, weight: stored, into: y2.data, parallelism: p)
                let (d1, d2) = (Tensor(shape: [n, I], repeating: 1), Tensor(shape: [n, I], repeating: 1))
                Gemm.linearInputGradient(dy.data, rows: n, weight: Weight(w), into: d1.data, beta: 1, parallelism: p)
                Gemm.linearInputGradient(dy.data, rows: n, weight: stored, into: d2.data, beta: 1, parallelism: p)
                let forward = Double(y1.maxAbsDifference(y2)) / Double(y1.maxAbs)
                let backward = Double(d1.maxAbsDifference(d2)) / Double(d1.maxAbs)
                if n * O * I < 1 << 22 {
                    XCTAssertEqual(forward, 0, "forward \(n)×\(O)×\(I), \(threads) threads: one sgemm call in both paths")
                    XCTAssertEqual(backward, 0, "input gradient \(n)×\(O)×\(I), \(threads) threads: one sgemm call in both paths")
                } else {
                    assertPinned("widenedGemm", max(forward, backward), within: Tolerance.widenedGemm, "\(n)×\(O)×\(I), \(threads) threads")
                }
                let naive = Tensor(zeros: [n, O])
                Gemm.naive(transA: false, transB: true, m: n, n: O, k: I, a: x.data, lda: I, b: w.data, ldb: I, c: naive.data, ldc: O)
                XCTAssertLessThan(naive.maxAbsDifference(y2), 1e-3)
            }
        }
    }
}
