// `prune generate --speculate`: the same text and ids as plain greedy decoding, its statistics on stderr, the
// JSON a script reads, and refusals of drafts the model cannot make.
import Foundation
import TestSupport
import XCTest

final class SpeculateCommandTests: XCTestCase {
    let model = Fixtures.projectRoot.appendingPathComponent("Checkpoints/stories260K").path

    func json(_ args: [String]) throws -> [String: Any] {
        let r = try PruneExecutable.run(args + ["--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    }

    func testSpeculationPrintsPlainGreedyTextAndItsStatistics() throws {
        let plain = try PruneExecutable.run(["generate", model, "--prompt", "Once upon a time", "--max-tokens", "40"])
        for draft in ["exit:4", "exit:2", "skip:2-3"] {
            let r = try PruneExecutable.run(["generate", model, "--prompt", "Once upon a time", "--max-tokens", "40",
                                             "--speculate", draft, "--draft-tokens", "3", "--compare-plain"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(r.stdout, plain.stdout, draft)
            XCTAssertTrue(r.stderr.contains("speculate \(draft == "skip:2-3" ? "skip:2,3" : draft), K=3: 40 tokens"), r.stderr)
            XCTAssertTrue(r.stderr.contains("drafted tokens accepted"), r.stderr)
            XCTAssertTrue(r.stderr.contains("outputs identical"), r.stderr)
        }
    }

    func testJSONHasIdsTextSpeedAndAcceptance() throws {
        let plain = try json(["generate", model, "--prompt", "Once upon a time", "--max-tokens", "30"])
        let speculative = try json(["generate", model, "--prompt", "Once upon a time", "--max-tokens", "30", "--speculate", "exit:4"])
        XCTAssertEqual(plain["ids"] as! [Int], speculative["ids"] as! [Int])
        XCTAssertEqual((plain["ids"] as! [Int]).count, 30)
        XCTAssertEqual(plain["text"] as! String, speculative["text"] as! String)
        XCTAssertTrue((plain["text"] as! String).hasPrefix(", there was a little girl named Lily."), plain["text"] as! String)
        XCTAssertNil(plain["acceptance_rate"])
        XCTAssertGreaterThan((plain["tokens_per_second"] as! NSNumber).doubleValue, 0)
        let rate = (speculative["acceptance_rate"] as! NSNumber).doubleValue
        XCTAssertTrue(rate > 0 && rate <= 1, "\(rate)")
        XCTAssertGreaterThan((speculative["mean_accepted"] as! NSNumber).doubleValue, 0)
    }

    /// exit:auto says what it chose and why, and the output is still plain greedy's (or it decodes plainly); a
    /// reduced draft vocabulary and a draft stop leave the output as it is too.
    func testAutomaticExitDraftVocabularyAndDraftStopKeepThePlainOutput() throws {
        let prompt = ["--prompt", "Once upon a time there was a little girl named Lily. She loved to", "--max-tokens", "40"]
        let plain = try json(["generate", model] + prompt)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("speculate-\(getpid()).txt")
        try """
            Once upon a time, there was a little girl named Lily. She loved to play outside in the sun.
            One day, a little boy named Tom saw a big red ball in the park. He wanted to play with it.
            The cat was happy. It liked to sleep in the sun and play with the dog.
            Mom said, "Let's go to the park." Lily and Ben went to the park. They played all day.
            """.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let stories = file.path
        for extra in [["--speculate", "exit:auto"], ["--speculate", "exit:auto", "--calibration", stories, "--draft-tokens", "2"],
                      ["--speculate", "exit:3", "--draft-vocab", "48", "--draft-vocab-from", stories],
                      ["--speculate", "skip:1", "--draft-stop", "0.6", "--draft-vocab", "100", "--draft-vocab-from", stories]] {
            let r = try PruneExecutable.run(["generate", model] + prompt + extra + ["--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(out["ids"] as! [Int], plain["ids"] as! [Int], "\(extra)")
            if extra[1] == "exit:auto" {
                XCTAssertTrue(r.stderr.contains("exit:auto: "), r.stderr)
                XCTAssertTrue(r.stderr.contains(extra.count > 2 ? "top-1 agreement on \(stories) (" : "top-1 agreement on the model's greedy continuation of the prompt (64 positions)"), r.stderr)
            }
            if extra.contains("--draft-vocab") {
                XCTAssertTrue(r.stderr.contains("draft vocabulary: the \(extra[extra.firstIndex(of: "--draft-vocab")! + 1]) most frequent tokens of \(stories)"), r.stderr)
            }
        }
    }

    func testRefusals() throws {
        for (args, words) in [(["--speculate", "exit:5"], ["exit layer 5 must be in 1…4", "5 layers"]),
                              (["--speculate", "skip:0-4"], ["at least one layer"]),
                              (["--speculate", "skip:9"], ["layer 9 outside 0…4"]),
                              (["--speculate", "early:3"], ["--speculate", "\"early:3\" is not exit:E or skip:LIST"]),
                              (["--speculate", "skip:2,2"], ["--speculate", "2 is given twice"]),
                              (["--speculate", "skip:3-1"], ["--speculate", "runs backwards"]),
                              (["--compare-plain"], ["--compare-plain needs --speculate"]),
                              (["--speculate", "exit:2", "--draft-vocab", "10"], ["--draft-vocab", "needs token frequencies"]),
                              (["--speculate", "exit:2", "--draft-vocab", "512", "--draft-vocab-from", "README.md"], ["--draft-vocab", "below vocab_size"]),
                              (["--speculate", "exit:2", "--draft-vocab", "x"], ["--draft-vocab must be a positive token count or all"]),
                              (["--speculate", "exit:2", "--draft-vocab-from", "README.md"], ["--draft-vocab-from needs --draft-vocab"]),
                              (["--speculate", "exit:2", "--draft-stop", "1.5"], ["--draft-stop must be in (0, 1)"]),
                              (["--speculate", "exit:2", "--calibration", "README.md"], ["--calibration goes with --speculate exit:auto"]),
                              (["--speculate", "exit:auto", "--calibration", "/nonexistent.jsonl"], ["/nonexistent.jsonl"]),
                              (["--draft-stop", "0.5"], ["--draft-stop needs --speculate"])] {
            let r = try PruneExecutable.run(["generate", model, "--prompt", "Once"] + args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            for w in words { XCTAssertTrue(r.stderr.contains(w), "“\(r.stderr)” should mention “\(w)”") }
        }
    }
}
