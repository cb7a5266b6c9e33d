// Self-speculative greedy decoding gives plain greedy decoding's output token for token: every early-exit
// draft and several skip sets, several draft lengths, stop tokens and budgets, on stories260K, on the small
// checkpoint variants transformers wrote, and on the real SmolLM2-135M where it has been built.
import Checkpoint
import Foundation
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
                     stopTokens: Set<Int32> = [], line: UInt = #line) throws -> [String: Double] {
        var options = SamplingOptions()
        options.maxTokens = maxTokens
        options.stopTokens = stopTokens
        let plain = try prompts.map { try Generator(model: model).generate(prompt: $0, options: options) }
        var acceptance: [String: Double] = [:]
        for draft in drafts {
            for k in ks {
                var stats = SpeculationStatistics()
                for (prompt, expected) in zip(prompts, plain) {
                    let generator = SelfSpeculativeGenerator(model: model, draft: draft, draftTokens: k)
                    var streamed: [Int32] = []
                    let out = generator.generate(prompt: prompt, options: options) { streamed.append($0) }
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

    /// Which drafts fit a model (the text form is parsed in Pipeline, PipelineTests/LayerListTests).
    func testDraftsThatFitTheModel() {
        XCTAssertNil(DraftLayers.exit(4).problem(layers: 5))
        XCTAssertNotNil(DraftLayers.exit(5).problem(layers: 5))
        XCTAssertNotNil(DraftLayers.exit(0).problem(layers: 5))
        XCTAssertNotNil(DraftLayers.skip(Set(0...4)).problem(layers: 5))
        XCTAssertNotNil(DraftLayers.skip([7]).problem(layers: 5))
    }
}
