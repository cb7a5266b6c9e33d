// Dataset files: .txt, JSONL text, JSONL input_ids; empty or malformed files refused with the line named.
import Data
import Foundation
import Support
import TestSupport
import XCTest

final class DatasetTests: XCTestCase {
    func write(_ name: String, _ content: String) throws -> URL {
        let url = try Fixtures.temporaryDirectory("dataset").appendingPathComponent(name)
        try content.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func testThreeFormats() throws {
        XCTAssertEqual(try Dataset(url: try write("a.txt", "hello\nworld")).records, [.text("hello\nworld")])
        XCTAssertEqual(try Dataset(url: try write("a.jsonl", "{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n")).records, [.text("a"), .text("b")])
        let ids = try Dataset(url: try write("b.jsonl", "{\"input_ids\": [1, 2, 3]}\n"))
        XCTAssertEqual(ids.records, [.ids([1, 2, 3])])
        XCTAssertEqual(try ids.tokenized(with: nil), [[1, 2, 3]])
        let kjv = try Dataset(url: Fixtures.kjvValid)
        XCTAssertEqual(kjv.records.count, 28)
    }

    func testRefusals() throws {
        for (name, content, words) in [("e.txt", "", "empty"), ("e.jsonl", "\n\n", "empty"), ("x.jsonl", "{\"text\": \"a\"}\nnot json\n", "line 2"),
                                        ("y.jsonl", "{\"other\": 1}\n", "neither"), ("z.jsonl", "{\"input_ids\": [1, \"a\"]}\n", "integers")] {
            let url = try write(name, content)
            XCTAssertThrowsError(try Dataset(url: url), name) { e in
                XCTAssertTrue((e as! PruneError).description.contains(words), "\(e)")
                XCTAssertEqual((e as! PruneError).subject, url.path)
            }
        }
        let text = try Dataset(url: try write("t.txt", "some text"))
        XCTAssertThrowsError(try text.tokenized(with: nil)) { e in XCTAssertTrue("\(e)".contains("no tokenizer")) }
    }
}
