// Our model and llama.cpp on the same exported file: the logits at every prompt position and the greedy continuation,
// with the measured difference printed so that bounds can be re-derived.
import Foundation
import Generation
import GGUF
import Llama
import Checkpoint
import Support
import Tensor
import TestSupport
import Tokenizers
import Training
import XCTest

/// Ours against llama.cpp on one GGUF file.
struct LlamaCppAgreement {
    /// Largest |ours − llama.cpp| over every logit of the prompt.
    var maxLogitDifference: Float
    /// Our greedy continuation and llama.cpp's.
    var ours: [Int32]
    var theirs: [Int32]
    /// Our tokenization of each text and llama.cpp's.
    var ourTokens: [[Int32]]
    var theirTokens: [[Int32]]

    /// Runs `checkpoint` (with the PEFT adapter `adapter` attached) here and `gguf` (with `lora`) in llama.cpp.
    static func measure(checkpoint: URL, adapter: URL? = nil, gguf: URL, lora: URL? = nil, prompt: [Int32], generate: Int,
                        texts: [String] = []) throws -> LlamaCppAgreement {
        let theirs = try LlamaCpp.run(gguf, lora: lora, prompt: prompt, generate: generate, texts: texts)
        let model = try LlamaModel.load(directory: checkpoint, parallelism: Parallelism(threads: 2))
        if let adapter { try PEFTAdapter.read(adapter).attach(to: model, directory: adapter) }
        let V = model.config.vocabSize
        XCTAssertEqual(theirs.vocabularySize, V)
        XCTAssertEqual(theirs.logits.count, prompt.count * V, "llama.cpp gave \(theirs.logits.count) logits")
        let logits = model.forward(tokens: prompt, batch: 1, length: prompt.count).logits
        var worst: Float = 0
        for i in 0..<min(logits.count, theirs.logits.count) { worst = max(worst, abs(logits.data[i] - theirs.logits[i])) }
        var options = SamplingOptions()
        options.maxTokens = generate
        let ours = try Generator(model: model).generate(prompt: prompt, options: options)
        var ourTokens: [[Int32]] = []
        if !texts.isEmpty {
            let tokenizer = try TokenizerLoader.load(directory: checkpoint)
            ourTokens = texts.map { tokenizer.encode($0) }
        }
        return LlamaCppAgreement(maxLogitDifference: worst, ours: ours, theirs: theirs.continuation, ourTokens: ourTokens,
                                 theirTokens: theirs.tokenizations)
    }

    /// Asserts the logits within `bound`, equal continuations and equal tokenizations; prints the measured difference.
    func check(_ what: String, bound: Float, file: StaticString = #filePath, line: UInt = #line) {
        print("\(what): max |logit difference| with llama.cpp \(maxLogitDifference) (bound \(bound)); "
              + "continuations \(ours == theirs ? "equal" : "differ at token \(ours.indices.first { $0 >= theirs.count || ours[$0] != theirs[$0] } ?? ours.count)")")
        XCTAssertLessThanOrEqual(maxLogitDifference, bound, "\(what): logits differ from llama.cpp's", file: file, line: line)
        XCTAssertEqual(ours, theirs, "\(what): greedy continuation differs from llama.cpp's", file: file, line: line)
        XCTAssertEqual(ourTokens, theirTokens, "\(what): llama.cpp tokenizes differently", file: file, line: line)
    }
}
