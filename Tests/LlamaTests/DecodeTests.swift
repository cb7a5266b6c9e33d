// The decoding path (DecodeSession: matrix–vector products, query-by-query attention, the fused argmax head)
// against transformers' logits, against the batched forward, and against itself: a pass of M rows gives each row
// exactly what M one-token steps give, on 1 and 2 threads, for every checkpoint variant — what makes
// self-speculation equal plain greedy by construction.
import Foundation
import Generation
import Llama
import Support
import Tensor
import TestSupport
import Tokenizers
import XCTest

final class DecodeTests: XCTestCase {
    static let variants = ["untied-f32", "tied-bf16", "untied-f16-sharded", "llama3-rope", "yarn-rope", "headdim-bias-linear-rope"]

    /// Logits (rows, V) of `tokens` decoded one at a time after the first `prefill` of them (rows = the rest).
    private func stepLogits(_ model: LlamaModel, _ tokens: [Int32], prefill: Int) -> [Float] {
        let C = model.config.hiddenSize, V = model.config.vocabSize
        let session = DecodeSession(model: model, capacity: tokens.count, rows: 1)
        let h = Tensor(zeros: [1, C])
        session.prefill(Array(tokens[..<prefill]), last: h.data)
        var out = Array(UnsafeBufferPointer(start: session.logits(of: h.data, rows: 1), count: V))
        for t in prefill..<tokens.count {
            model.embed(tokens[t], into: h.data)
            session.run(0..<model.layers.count, on: h.data, rows: 1, at: t)
            out += UnsafeBufferPointer(start: session.logits(of: h.data, rows: 1), count: V)
        }
        return out
    }

    func testDecodingStepsMatchTransformersLogits() throws {
        let ref = try Reference()
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        let rows = ref.idRows("input_ids"), refLogits = try ref.tensor("logits")
        let t = rows[0].count, V = model.config.vocabSize
        var worst: Float = 0
        for (b, row) in rows.enumerated() {
            let logits = stepLogits(model, row, prefill: 3)   // positions 2…t−1
            for (i, v) in logits.enumerated() {
                worst = max(worst, abs(v - refLogits.data[(b * t + 2) * V + i]))
            }
        }
        assertPinned("decode.logits", Double(worst), within: Tolerance.logits, "stories260K, one token at a time")
    }

    func testDecodingStepsMatchTheBatchedForward() throws {
        var rng = SeededGenerator(seed: 5)
        for name in Self.variants {
            let model = try LlamaModel.load(directory: Fixtures.file("checkpoints/" + name))
            let V = Int32(model.config.vocabSize)
            let tokens = (0..<40).map { _ in Int32.random(in: 0..<V, using: &rng) }   // 40 > 16: the batched forward tiles and uses sgemm
            let full = model.forward(tokens: tokens, batch: 1, length: tokens.count).logits
            let steps = stepLogits(model, tokens, prefill: 20)
            let offset = 19 * Int(V)
            var worst: Float = 0
            for (i, v) in steps.enumerated() { worst = max(worst, abs(v - full.data[offset + i])) }
            assertPinned("decode.forward", Double(worst), within: Tolerance.decodeAgainstForward, name)
        }
    }

    func testAPassOfMRowsEqualsMOneTokenStepsBitForBit() throws {
        var rng = SeededGenerator(seed: 6)
        for name in Self.variants + ["stories260K"] {
            let dir = name == "stories260K" ? Fixtures.stories260K : Fixtures.file("checkpoints/" + name)
            for threads in [1, 2] {
                let model = try LlamaModel.load(directory: dir, parallelism: Parallelism(threads: threads))
                let C = model.config.hiddenSize, V = model.config.vocabSize, L = model.layers.count
                let prompt = (0..<7).map { _ in Int32.random(in: 0..<Int32(V), using: &rng) }
                let next = (0..<MatrixVector.maxRows).map { _ in Int32.random(in: 0..<Int32(V), using: &rng) }
                let session = DecodeSession(model: model, capacity: prompt.count + next.count)
                let x = Tensor(zeros: [next.count, C])
                session.prefill(prompt, last: x.data)
                let p = session.cache.length
                // One token at a time: logits and argmax of each.
                var single: [Float] = [], singleBest: [MatrixVector.Best] = []
                for (i, id) in next.enumerated() {
                    model.embed(id, into: x.data)
                    session.run(0..<L, on: x.data, rows: 1, at: p + i)
                    singleBest.append(session.argmax(of: x.data, rows: 1)[0])
                    single += UnsafeBufferPointer(start: session.logits(of: x.data, rows: 1), count: V)
                }
                for m in [2, 5, MatrixVector.maxRows] {
                    session.cache.truncate(to: p)
                    for i in 0..<m { model.embed(next[i], into: x.data + i * C) }
                    session.run(0..<L, on: x.data, rows: m, at: p)
                    let best = Array(session.argmax(of: x.data, rows: m))
                    let logits = Array(UnsafeBufferPointer(start: session.logits(of: x.data, rows: m), count: m * V))
                    assertEqualElements(logits, Array(single[..<(m * V)]), "\(name), \(threads) threads: \(m) rows at once")
                    XCTAssertEqual(best, Array(singleBest[..<m]), "\(name): argmax of \(m) rows")
                    for i in 0..<m {
                        let row = Array(logits[(i * V)..<((i + 1) * V)])
                        XCTAssertEqual(best[i].index, row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!)
                    }
                }
            }
        }
    }

    func testGreedyGenerationEqualsRecomputingTheWholeSequence() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let tokenizer = try TokenizerLoader.load(directory: Fixtures.stories260K)
        var options = SamplingOptions()
        options.maxTokens = 24
        for text in ["Once upon a time", "The cat", "Lily and Ben went to the park. They"] {
            let prompt = tokenizer.encode(text)
            let generator = Generator(model: model)
            let fast = try generator.generate(prompt: prompt, options: options)
            var slow: [Int32] = [], sequence = prompt
            let V = model.config.vocabSize
            while slow.count < options.maxTokens {
                let logits = model.forward(tokens: sequence, batch: 1, length: sequence.count).logits
                let next = Int32(Kernels.logSumExp(logits.data + (sequence.count - 1) * V, count: V).argmax)
                slow.append(next)
                sequence.append(next)
            }
            XCTAssertEqual(fast, slow, text)
            XCTAssertEqual(generator.timing.prefillTokens, prompt.count)
            XCTAssertEqual(generator.timing.decodeTokens, options.maxTokens - 1)
            XCTAssertGreaterThan(generator.timing.decodeTokensPerSecond, 0)
        }
    }
}
