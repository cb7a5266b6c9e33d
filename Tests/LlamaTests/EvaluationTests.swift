// Sliding-window evaluation counts every target exactly once, equals the plain loss when the window is the
// whole sequence, and reports its progress batch by batch up to the last window.
import Generation
import Llama
import Support
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

    func testTheLossReportsEveryBatchUpToTheLastWindow() throws {
        let ref = try Reference()
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        // Each sequence of 24 tokens gives windows of 10, 10 and 6 tokens (context 10, stride 9); batched by length,
        // 3 at a time: the two of 6 tokens, then 3 and 1 of 10.
        let windows = Evaluation.windows(ref.idRows("input_ids"), context: 10, stride: 9)
        var events: [ProgressEvent] = []
        _ = Evaluation.loss(model: model, windows: windows, batchSize: 3,
                            progress: ProgressReporter("eval", total: windows.count, sink: { events.append($0) }))
        let loop = events.compactMap { e -> (done: Int, units: Double, elapsed: Double)? in
            guard case let .loop("eval", done, total, units, "tok", elapsed) = e, total == windows.count else { return nil }
            return (done, units, elapsed)
        }
        XCTAssertEqual(loop.count, events.count, "every event the eval loop's, of \(windows.count) windows")
        XCTAssertEqual(loop.map(\.done), [2, 5, 6], "one event per batch, the last at the total")
        XCTAssertEqual(loop.map(\.units), [12, 42, 52], "tokens so far")
        XCTAssertEqual(loop.map(\.elapsed), loop.map(\.elapsed).sorted(), "one clock")
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
