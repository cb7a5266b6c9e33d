// Dynamic early exit (approximate by design): at threshold 1 no exit is taken and the output is plain greedy's;
// at a tiny threshold every token leaves at the first checked exit; the skipped layers' caches stay in step.
import Foundation
import Generation
import Llama
import TestSupport
import Tokenizers
import XCTest

final class EarlyExitGeneratorTests: XCTestCase {
    func testThresholdOneIsPlainGreedyAndATinyOneLeavesAtTheFirstCheck() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let tokenizer = try TokenizerLoader.load(directory: Fixtures.stories260K)
        var options = SamplingOptions()
        options.maxTokens = 30
        for text in SelfSpeculativeTests.storyPrompts.prefix(4) {
            let prompt = tokenizer.encode(text)
            let plain = try Generator(model: model).generate(prompt: prompt, options: options)
            let never = EarlyExitGenerator(model: model, threshold: 1)
            XCTAssertEqual(never.generate(prompt: prompt, options: options), plain)
            XCTAssertEqual(never.statistics.meanLayers, 5)
            XCTAssertEqual(never.statistics.generated, 30)
            let always = EarlyExitGenerator(model: model, threshold: 1e-9, minLayer: 3, checkEvery: 2)
            let out = always.generate(prompt: prompt, options: options)
            XCTAssertEqual(out.count, 30)
            XCTAssertEqual(Set(always.statistics.layersUsed), [3])
            // Checks after 3 layers then 5 (the last, never an exit): a confident threshold mixes 3 and 5.
            let sometimes = EarlyExitGenerator(model: model, threshold: 0.5, minLayer: 3, checkEvery: 1)
            _ = sometimes.generate(prompt: prompt, options: options)
            XCTAssertTrue(Set(sometimes.statistics.layersUsed).isSubset(of: [3, 4, 5]))
        }
    }
}
