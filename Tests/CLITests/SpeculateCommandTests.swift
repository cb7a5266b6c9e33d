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

    func testRefusals() throws {
        for (args, words) in [(["--speculate", "exit:5"], ["exit layer 5 must be in 1…4", "5 layers"]),
                              (["--speculate", "skip:0-4"], ["at least one layer"]),
                              (["--speculate", "skip:9"], ["layer 9 outside 0…4"]),
                              (["--speculate", "early:3"], ["--speculate", "\"early:3\" is not exit:E or skip:LIST"]),
                              (["--speculate", "skip:2,2"], ["--speculate", "2 is given twice"]),
                              (["--speculate", "skip:3-1"], ["--speculate", "runs backwards"]),
                              (["--compare-plain"], ["--compare-plain needs --speculate"])] {
            let r = try PruneExecutable.run(["generate", model, "--prompt", "Once"] + args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            for w in words { XCTAssertTrue(r.stderr.contains(w), "“\(r.stderr)” should mention “\(w)”") }
        }
    }
}
