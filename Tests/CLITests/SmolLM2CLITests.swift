// The real SmolLM2-135M-Instruct (byte-level BPE tokenizer.json, ChatML template) through the CLI.
import Foundation
import TestSupport
import XCTest

final class SmolLM2CLITests: XCTestCase {
    func smolLM2() throws -> String { try Fixtures.smolLM2().path }

    func testChatAnswersParisGreedily() throws {
        let r = try PruneExecutable.run(["generate", try smolLM2(), "--chat", "--prompt", "What is the capital of France?", "--max-tokens", "24"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Paris"), r.stdout)
    }

    func testTokenizeWithTokenizerJSONMatchesReference() throws {
        let ref = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.file("tokenizers/smollm2/reference.json")))
        let cases = ((ref as? [String: Any])?["cases"] as? [[String: Any]]) ?? []
        let first = try XCTUnwrap(cases.first { ($0["text"] as? String).map { !$0.isEmpty } ?? false })
        let r = try PruneExecutable.run(["tokenize", try smolLM2(), "--text", first["text"] as! String, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ids = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])["ids"] as! [Int]
        XCTAssertEqual(ids, (first["ids"] as! [NSNumber]).map(\.intValue))
    }
}
