// Self-speculative greedy decoding gives plain greedy decoding's output token for token: every early-exit
// draft and several skip sets, several draft lengths, stop tokens and budgets, on stories260K, on the small
// checkpoint variants transformers wrote, and on the real SmolLM2-135M where it has been built.
import Checkpoint
import Foundation
import Generation
import Llama
import Support
import Tensor
import TestSupport
import Tokenizers
import XCTest

final class SelfSpeculativeTests: XCTestCase {
    static let storyPrompts = [
        "Once upon a time", "One day, a little boy", "The cat", "Lily and Ben went to the park. They",
        "Tom had a red ball", "The sun was", "Mom said", "There was a big dog named Max. He liked to",
        "Sara wanted to bake a cake", "In the forest, a small bird", "The old man", "Anna found a shiny",
    ]

    /// Asserts that every draft in `drafts` with every K in `ks` reproduces plain greedy decoding on `prompts`;
    /// returns the overall acceptance per draft.
    @discardableResult
    func assertExact(_ model: LlamaModel, prompts: [[Int32]], drafts: [DraftLayers], ks: [Int], maxTokens: Int,
                     stopTokens: Set<Int32> = [], vocabulary: DraftVocabulary? = nil, draftStop: Double? = nil,
                     line: UInt = #line) throws -> [String: Double] {
        var options = SamplingOptions()
        options.maxTokens = maxTokens
        options.stopTokens = stopTokens
        let plain = try prompts.map { try Generator(model: model).generate(prompt: $0, options: options) }
        var acceptance: [String: Double] = [:]
        for draft in drafts {
            for k in ks {
                var stats = SpeculationStatistics()
                for (prompt, expected) in zip(prompts, plain) {
                    let generator = SelfSpeculativeGenerator(model: model, draft: draft, draftTokens: k,
                                                             draftVocabulary: vocabulary, draftStop: draftStop)
                    var streamed: [Int32] = []
                    let out = try generator.generate(prompt: prompt, options: options) { streamed.append($0) }
                    XCTAssertEqual(out, expected, "\(draft) K=\(k) prompt \(prompt)", line: line)
                    XCTAssertEqual(streamed, out, line: line)
                    stats.drafted += generator.statistics.drafted
                    stats.accepted += generator.statistics.accepted
                }
                acceptance["\(draft) K=\(k)"] = stats.acceptanceRate
            }
        }
        return acceptance
    }

    func testStories260KSpeculationIsPlainGreedy() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let tokenizer = try TokenizerLoader.load(directory: Fixtures.stories260K)
        var prompts = Self.storyPrompts.map { tokenizer.encode($0) }
        var rng = SeededGenerator(seed: 1)
        for n in [1, 3, 9] { prompts.append([1] + (0..<n).map { _ in Int32.random(in: 3..<512, using: &rng) }) }
        let drafts: [DraftLayers] = (1...4).map { .exit($0) } + [.skip([2]), .skip([3]), .skip([1, 2, 3]), .skip([0]), .skip([4])]
        let acceptance = try assertExact(model, prompts: prompts, drafts: drafts, ks: [1, 3, 6], maxTokens: 40)
        print("stories260K acceptance: " + acceptance.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2f", $0.value))" }.joined(separator: ", "))
    }

    func testStopTokensAndSmallBudgets() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let tokenizer = try TokenizerLoader.load(directory: Fixtures.stories260K)
        let prompts = Self.storyPrompts.prefix(4).map { tokenizer.encode($0) }
        // "." and "," stop generation wherever they come, drafted or verified.
        let stops = Set([tokenizer.encode(".", addSpecialTokens: false).last!, tokenizer.encode(",", addSpecialTokens: false).last!])
        try assertExact(model, prompts: Array(prompts), drafts: [.exit(4), .exit(2), .skip([3])], ks: [1, 4], maxTokens: 30, stopTokens: stops)
        for budget in [1, 2, 3, 5] {
            try assertExact(model, prompts: Array(prompts), drafts: [.exit(4), .skip([1])], ks: [1, 4], maxTokens: budget)
        }
    }

    /// A reduced draft head (FR-Spec) and a dynamic draft length change what is drafted, never the output: the
    /// verifier keeps the full head, so tokens outside the draft vocabulary still come, from the verifier.
    func testReducedDraftVocabularyAndDraftStopKeepPlainGreedy() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let tokenizer = try TokenizerLoader.load(directory: Fixtures.stories260K)
        let prompts = Self.storyPrompts.prefix(6).map { tokenizer.encode($0) }
        var counts = [Int](repeating: 0, count: model.config.vocabSize)
        for p in Self.storyPrompts.map({ tokenizer.encode($0) }) { for t in p { counts[Int(t)] += 1 } }
        let ids = DraftVocabulary.mostFrequent(40, counts: counts, required: [2])
        XCTAssertEqual(ids.count, 40)
        XCTAssertEqual(ids.first, 2, "required ids come first")
        let vocabulary = DraftVocabulary(model: model, ids: ids)
        XCTAssertEqual(vocabulary.head.rows, 40)
        let narrow = try assertExact(model, prompts: Array(prompts), drafts: [.exit(3), .skip([2])], ks: [2, 5], maxTokens: 32,
                                     vocabulary: vocabulary)
        let full = try assertExact(model, prompts: Array(prompts), drafts: [.exit(3), .skip([2])], ks: [2, 5], maxTokens: 32)
        XCTAssertNotEqual(narrow, full, "40 of 512 tokens must change what is drafted")
        for stop in [0.3, 0.8] {
            try assertExact(model, prompts: Array(prompts), drafts: [.exit(4), .skip([1])], ks: [4], maxTokens: 32, draftStop: stop)
            try assertExact(model, prompts: Array(prompts), drafts: [.exit(2)], ks: [6], maxTokens: 32, vocabulary: vocabulary,
                            draftStop: stop)
        }
        // A bf16 head's rows are selected as stored.
        let tied = try LlamaModel.load(directory: Fixtures.file("checkpoints/tied-bf16"))
        let V = tied.config.vocabSize
        let few = DraftVocabulary(model: tied, ids: (0..<Int32(V / 3)).map { $0 * 3 })
        try assertExact(tied, prompts: [[1, 5, 9], [4]], drafts: [.exit(1), .skip([1])], ks: [3], maxTokens: 20, vocabulary: few,
                        draftStop: 0.5)
    }

    func testCheckpointVariantsSpeculateExactly() throws {
        // GQA, untied and tied heads, f16/bf16, RoPE scalings, head_dim ≠ C/H and biases: 3-layer random models.
        var rng = SeededGenerator(seed: 2)
        for name in ["untied-f32", "tied-bf16", "untied-f16-sharded", "llama3-rope", "yarn-rope", "headdim-bias-linear-rope"] {
            let model = try LlamaModel.load(directory: Fixtures.file("checkpoints/" + name))
            let V = Int32(model.config.vocabSize)
            let prompts = (0..<4).map { _ in (0..<Int.random(in: 1...6, using: &rng)).map { _ in Int32.random(in: 0..<V, using: &rng) } }
            try assertExact(model, prompts: prompts, drafts: [.exit(1), .exit(2), .skip([1]), .skip([0, 2])], ks: [2, 5], maxTokens: 24)
        }
    }

    func testSmolLM2SpeculationIsPlainGreedy() throws {
        let dir = try Fixtures.smolLM2()
        let model = try LlamaModel.load(directory: dir)
        let tokenizer = try TokenizerLoader.load(directory: dir)
        let prompts = ["The capital of France is", "def fibonacci(n):", "In the beginning God created"].map { tokenizer.encode($0) }
        let acceptance = try assertExact(model, prompts: prompts, drafts: [.exit(20), .skip(Set(12...17))], ks: [4], maxTokens: 20)
        print("SmolLM2-135M acceptance: \(acceptance)")
    }

    /// Which drafts fit a model (the text form is parsed in Jobs, PipelineTests/LayerListTests).
    func testDraftsThatFitTheModel() {
        XCTAssertNil(DraftLayers.exit(4).problem(layers: 5))
        XCTAssertNotNil(DraftLayers.exit(5).problem(layers: 5))
        XCTAssertNotNil(DraftLayers.exit(0).problem(layers: 5))
        XCTAssertNotNil(DraftLayers.skip(Set(0...4)).problem(layers: 5))
        XCTAssertNotNil(DraftLayers.skip([7]).problem(layers: 5))
    }
}

/// Speculative sampling is distributed as plain sampling: 20 000 seeded draws (5 000 with top-p 0.9) of the next 3 tokens each, by
/// plain and by speculative sampling, on stories260K, agree by a two-sample chi-square test of homogeneity over
/// the 3-token sequences after "The" at temperature 1.3 (sequences seen fewer than 10 times in both samples together pooled into one bin),
/// at significance 0.001 (a fixed seed set: the test is deterministic; a correct sampler passes it with
/// probability 0.999 over seed sets). The same test tells apart plain sampling at temperature 1.3 and 1.5, so it
/// has the power to see a wrong acceptance rule.
final class SpeculativeSamplingTests: XCTestCase {
    private func sequences(_ draws: Int, seed: UInt64, temperature: Double, topP: Double,
                           _ generate: (SamplingOptions) throws -> [Int32]) rethrows -> [[Int32]: Int] {
        var counts: [[Int32]: Int] = [:]
        var options = SamplingOptions()
        options.maxTokens = 3
        options.temperature = temperature
        options.topP = topP
        for i in 0..<draws {
            options.seed = seed &+ UInt64(i) &* 0x9E37_79B9
            counts[try generate(options), default: 0] += 1
        }
        return counts
    }

    /// The chi-square statistic of two samples' counts, its degrees of freedom and the 0.001 critical value.
    private func homogeneity(_ a: [[Int32]: Int], _ b: [[Int32]: Int]) -> (statistic: Double, critical: Double, bins: Int) {
        let na = Double(a.values.reduce(0, +)), nb = Double(b.values.reduce(0, +))
        var bins: [(Double, Double)] = [], pooled = (0.0, 0.0)
        for key in Set(a.keys).union(b.keys) {
            let x = Double(a[key] ?? 0), y = Double(b[key] ?? 0)
            if x + y >= 10 { bins.append((x, y)) } else { pooled.0 += x; pooled.1 += y }
        }
        if pooled.0 + pooled.1 > 0 { bins.append(pooled) }
        var chi = 0.0
        for (x, y) in bins {
            let total = x + y
            let ea = total * na / (na + nb), eb = total * nb / (na + nb)
            chi += (x - ea) * (x - ea) / ea + (y - eb) * (y - eb) / eb
        }
        let d = Double(bins.count - 1), z = 3.090   // Wilson–Hilferty, upper 0.001 point
        let critical = d * pow(1 - 2 / (9 * d) + z * (2 / (9 * d)).squareRoot(), 3)
        return (chi, critical, bins.count)
    }

    func testSpeculativeSamplingDrawsFromThePlainDistribution() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let tokenizer = try TokenizerLoader.load(directory: Fixtures.stories260K)
        let prompt = tokenizer.encode("The")   // an open prompt: many continuations, so many bins
        for (draft, k, topP, draws) in [(DraftLayers.exit(2), 2, 1.0, 20_000), (.skip([1, 2]), 3, 0.9, 5_000)] {
            let plain = try sequences(draws, seed: 1, temperature: 1.3, topP: topP) {
                try Generator(model: model).generate(prompt: prompt, options: $0)
            }
            var stats = SpeculationStatistics()
            let speculative = try sequences(draws, seed: 2, temperature: 1.3, topP: topP) {
                let g = SelfSpeculativeGenerator(model: model, draft: draft, draftTokens: k)
                defer { stats.drafted += g.statistics.drafted; stats.accepted += g.statistics.accepted }
                return try g.generate(prompt: prompt, options: $0)
            }
            let t = homogeneity(plain, speculative)
            print(String(format: "speculative sampling %@ K=%d top-p %.1f: chi-square %.1f over %d bins (0.001 critical %.1f); acceptance %.2f",
                         draft.description, k, topP, t.statistic, t.bins, t.critical, stats.acceptanceRate))
            XCTAssertLessThan(t.statistic, t.critical, "\(draft) K=\(k) top-p \(topP): speculative sampling differs from plain")
            XCTAssertGreaterThan(t.bins, 20, "too few sequences to test")
            XCTAssertGreaterThan(stats.acceptanceRate, 0.05, "drafts should be accepted sometimes")
        }
        // Power: a distribution slightly off (temperature 1.5) is told apart by the same test at 3 000 draws.
        let a = try sequences(3_000, seed: 3, temperature: 1.3, topP: 1) { try Generator(model: model).generate(prompt: prompt, options: $0) }
        let b = try sequences(3_000, seed: 4, temperature: 1.5, topP: 1) { try Generator(model: model).generate(prompt: prompt, options: $0) }
        let t = homogeneity(a, b)
        XCTAssertGreaterThan(t.statistic, t.critical, "the test cannot tell temperature 1 from 1.15")
    }
}
