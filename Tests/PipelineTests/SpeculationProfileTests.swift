// speculation.json: what the layerskip recipe stores with a model for exit:auto and the draft vocabulary. It
// reads back as written, and a profile that cannot describe the model is refused with one line naming the file.
import Checkpoint
import Data
import Foundation
import Generation
import Jobs
import Llama
import Support
import TestSupport
import Tokenizers
import XCTest

final class SpeculationProfileTests: XCTestCase {
    func testRoundTripAndMeasurements() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let tokenizer = try TokenizerLoader.load(directory: Fixtures.stories260K)
        let dir = try Fixtures.temporaryDirectory("speculation-profile")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("d.jsonl")
        try "{\"text\": \"Once upon a time there was a cat.\"}\n{\"text\": \"The cat was a cat.\"}\n"
            .write(to: data, atomically: true, encoding: .utf8)
        let f = try SpeculationProfile.countTokens(of: try Dataset(url: data), tokenizer: tokenizer, vocabularySize: 512)
        let ids = tokenizer.encode("Once upon a time there was a cat.") + tokenizer.encode("The cat was a cat.")
        XCTAssertEqual(f.tokens, ids.count)
        XCTAssertEqual(f.counts.reduce(0, +), ids.count)
        let cat = try XCTUnwrap(tokenizer.encode(" cat", addSpecialTokens: false).last)
        XCTAssertEqual(f.counts.first, 3, "\(f.ids) \(f.counts)")
        XCTAssertEqual(f.counts[try XCTUnwrap(f.ids.firstIndex(of: cat))], 3, "\(f.ids) \(f.counts)")
        // Most frequent first; among equal counts the lower id first.
        for i in 1..<f.ids.count {
            XCTAssertTrue(f.counts[i - 1] > f.counts[i] || (f.counts[i - 1] == f.counts[i] && f.ids[i - 1] < f.ids[i]), "\(f.ids) \(f.counts)")
        }
        let exits = SpeculationProfile.measureExits(model: model, samples: [ids], source: "d")
        XCTAssertEqual(exits.top1.count, 5)
        XCTAssertEqual(exits.top1.last, 1, "the last exit is the full model")
        XCTAssertEqual(exits.positions, ids.count)
        let profile = SpeculationProfile(exitAgreement: exits, tokenFrequencies: f, draftVocabulary: 8)
        try profile.write(into: dir)
        XCTAssertEqual(try SpeculationProfile.stored(in: dir, config: model.config), profile)
        let text = try String(contentsOf: dir.appendingPathComponent("speculation.json"), encoding: .utf8)
        XCTAssertTrue(text.contains("\"exit_top1_agreement\"") && text.contains("\"token_frequencies\""), text)
        XCTAssertNil(try SpeculationProfile.stored(in: dir.appendingPathComponent("none"), config: model.config))
    }

    /// Agreement along the model's own greedy continuation equals the teacher-forced agreement on prompt +
    /// continuation (a batched forward, every exit through the full head) at the same positions: with a one-token
    /// prompt the two differ only by the prompt's own position, at most one count per exit.
    func testAgreementAlongTheGreedyContinuationMatchesTeacherForcing() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let prompt: [Int32] = [1], n = 40
        var options = SamplingOptions()
        (options.maxTokens, options.stopTokens) = (n + 1, [])
        let continuation = try Generator(model: model).generate(prompt: prompt, options: options)
        XCTAssertEqual(continuation.count, n + 1)
        let along = SpeculationProfile.measureExitsOnContinuation(model: model, prompt: prompt, tokens: n, draft: nil, source: "c")
        XCTAssertEqual(along.positions, n)
        XCTAssertEqual(along.top1.last, 1)
        let forced = SpeculationProfile.measureExits(model: model, samples: [prompt + continuation.prefix(n)], source: "f")
        XCTAssertEqual(forced.positions, n + 1)
        for (l, (a, f)) in zip(along.top1, forced.top1).enumerated() {
            XCTAssertLessThanOrEqual(abs(a * Double(n) - f * Double(n + 1)), 1 + 1e-9, "exit \(l + 1): along \(a), forced \(f)")
        }
        // Through a draft head of half the vocabulary (the even ids), an exit agrees only where the full model's
        // token is in the head.
        let even = DraftVocabulary(model: model, ids: stride(from: 0, to: 512, by: 2).map(Int32.init))
        let drafted = SpeculationProfile.measureExitsOnContinuation(model: model, prompt: prompt, tokens: n, draft: even, source: "c")
        let inHead = continuation[1...n].filter { $0 % 2 == 0 }.count
        for (l, d) in drafted.top1.dropLast().enumerated() {
            XCTAssertLessThanOrEqual(d * Double(n), Double(inHead) + 1e-9, "exit \(l + 1)")
        }
        // The continuation ends where generation would: at the first stop token the model chooses (here the 5th).
        let stop = continuation[4]
        let stopped = SpeculationProfile.measureExitsOnContinuation(model: model, prompt: prompt, tokens: n, draft: nil,
                                                                    stopTokens: [stop], source: "c")
        XCTAssertEqual(stopped.positions, continuation.firstIndex(of: stop)!, "positions up to the stop token chosen")
    }

    func testProfilesThatDoNotFitAreRefused() throws {
        let config = try LlamaModel.load(directory: Fixtures.stories260K).config
        let dir = try Fixtures.temporaryDirectory("speculation-profile-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let exits = #""exit_top1_agreement": {"top1": [0.1, 0.2, 0.3, 0.4, 1], "source": "x", "positions": 9}"#
        for (json, words) in [
            (#"{"exit_top1_agreement": {"top1": [0.5, 1], "source": "x", "positions": 3}}"#, "has 2 exits; the model has 5 layers"),
            (#"{"exit_top1_agreement": {"top1": [0.5, 0.1, 0.2, 1.5, 1], "source": "x", "positions": 3}}"#, "outside 0…1"),
            ("{" + exits + #", "token_frequencies": {"ids": [3, 600], "counts": [2, 1], "source": "x", "tokens": 3}}"#, "token id 600 is outside"),
            (#"{"token_frequencies": {"ids": [3, 3], "counts": [2, 1], "source": "x", "tokens": 3}}"#, "lists an id twice"),
            (#"{"token_frequencies": {"ids": [3], "counts": [2, 1], "source": "x", "tokens": 3}}"#, "as many ids as counts"),
            (#"{"draft_vocabulary": 8}"#, "draft_vocabulary without token_frequencies"),
            (#"{"exit_top1_agreement": [1, 2]}"#, "wrong type for \"exit_top1_agreement\""),
            ("{not json", "not valid JSON"),
        ] {
            try json.write(to: dir.appendingPathComponent("speculation.json"), atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try SpeculationProfile.stored(in: dir, config: config), json) { error in
                let line = "\(error)"
                XCTAssertTrue(line.contains("speculation.json") && line.contains(words), "“\(line)” should say “\(words)”")
                XCTAssertFalse(line.contains("\n"), line)
            }
        }
    }
}
