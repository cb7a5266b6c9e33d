// Sliding-window evaluation counts every target exactly once, and equals the plain loss when the window
// is the whole sequence.
import Generation
import Llama
import TestSupport
import Tokenizers
import XCTest

final class EvaluationTests: XCTestCase {
    func testWindowsCountEachTargetOnce() {
        let seq = (0..<23).map { Int32($0) }
        for (context, stride) in [(8, 8), (8, 3), (8, 1), (23, 23), (30, 30), (5, 4)] {
            let windows = Evaluation.windows([seq], context: context, stride: stride)
            var predicted: [Int32] = []
            for w in windows {
                for p in w.skip..<(w.tokens.count - 1) { predicted.append(w.tokens[p + 1]) }
            }
            XCTAssertEqual(predicted, Array(seq.dropFirst()), "context \(context) stride \(stride)")
        }
    }

    func testWholeSequenceWindowEqualsReferenceLoss() throws {
        let ref = try Reference()
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        let rows = ref.idRows("input_ids")
        let windows = Evaluation.windows(rows, context: rows[0].count, stride: rows[0].count)
        let tally = Evaluation.loss(model: model, windows: windows, batchSize: 1)
        XCTAssertEqual(tally.count, rows.count * (rows[0].count - 1))
        assertPinned("eval.loss", abs(tally.mean - ref.double("loss")), within: Tolerance.loss)
    }

    func testGreedyGenerationMatchesTheKnownStory() throws {
        let ref = try Reference()
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        let tok = try TokenizerLoader.load(directory: ref.modelDirectory)
        var options = SamplingOptions()
        options.maxTokens = 40
        let ids = try Generator(model: model).generate(prompt: tok.encode("Once upon a time"), options: options)
        XCTAssertTrue(tok.decode(ids).hasPrefix(", there was a little girl named Lily. She loved to play outside in the park."),
                      tok.decode(ids))
    }
}
