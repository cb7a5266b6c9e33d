// Multiple-choice task files: the shipped KJV task reads; every malformed line is refused naming the file and line.
import Data
import Foundation
import Support
import TestSupport
import XCTest

final class MultipleChoiceTaskTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("task") }
    override func tearDown() { if let scratch { try? FileManager.default.removeItem(at: scratch) } }

    func write(_ name: String, _ content: String) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try Data(content.utf8).write(to: url)
        return url
    }

    func testAQuestionAndItsLine() throws {
        let url = try write("t.jsonl", "\n{\"context\": \"\", \"choices\": [\"a \", \"b\"], \"gold\": 1}\n")
        XCTAssertEqual(try MultipleChoiceTask(url: url).questions, [MultipleChoiceQuestion(context: "", choices: ["a ", "b"], gold: 1, line: 2)])
    }

    func testTheShippedKJVTaskReads() throws {
        let task = try MultipleChoiceTask(url: Fixtures.projectRoot.appendingPathComponent("Recipes/data/kjv-endings.jsonl"))
        XCTAssertEqual(task.questions.count, 300)
        XCTAssertTrue(task.questions.allSatisfy { $0.choices.count == 4 && Set($0.choices).count == 4 }, "four different endings each")
    }

    func testMalformedLinesAreRefusedWithTheirLine() throws {
        let good = "{\"context\": \"The LORD is my\", \"choices\": [\"shepherd\", \"rock\"], \"gold\": 0}\n"
        let cases: [(String, String)] = [
            ("not JSON", "{\"context\": \"x\", \"choices\": [\"a\"]"),
            ("not an object", "[\"x\", [\"a\"], 0]"),
            ("no context", "{\"choices\": [\"a\", \"b\"], \"gold\": 0}"),
            ("context not a string", "{\"context\": 3, \"choices\": [\"a\", \"b\"], \"gold\": 0}"),
            ("no choices", "{\"context\": \"x\", \"gold\": 0}"),
            ("empty choices", "{\"context\": \"x\", \"choices\": [], \"gold\": 0}"),
            ("a choice not a string", "{\"context\": \"x\", \"choices\": [\"a\", 2], \"gold\": 0}"),
            ("no gold", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"]}"),
            ("gold a string", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"gold\": \"a\"}"),
            ("gold fractional", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"gold\": 0.5}"),
            ("gold a boolean", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"gold\": true}"),
            ("gold past the choices", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"gold\": 2}"),
            ("gold negative", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"gold\": -1}"),
        ]
        for (label, line) in cases {
            let url = try write("bad.jsonl", good + "\n" + line + "\n")
            XCTAssertThrowsError(try MultipleChoiceTask(url: url), label) { e in
                let error = e as! PruneError
                XCTAssertEqual(error.subject, url.path, label)
                XCTAssertTrue(error.problem.hasPrefix("line 3"), "\(label): \(error.problem)")
            }
        }
        let outOfRange = try write("range.jsonl", "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"gold\": 2}\n")
        XCTAssertThrowsError(try MultipleChoiceTask(url: outOfRange)) { e in
            XCTAssertEqual("\(e)", "\(outOfRange.path): line 1: gold 2 is outside the 2 choices (0…1)")
        }
    }

    func testFilesThatHoldNoTaskAreRefused() throws {
        for (name, content, words) in [("empty.jsonl", "", "no questions"), ("blank.jsonl", "\n  \n", "no questions"),
                                       ("task.txt", "The LORD is my shepherd", "JSON Lines")] {
            let url = try write(name, content)
            XCTAssertThrowsError(try MultipleChoiceTask(url: url), name) { e in
                XCTAssertEqual((e as! PruneError).subject, url.path)
                XCTAssertTrue("\(e)".contains(words), "\(e)")
            }
        }
        XCTAssertThrowsError(try MultipleChoiceTask(url: scratch.appendingPathComponent("missing.jsonl"))) { e in
            XCTAssertTrue("\(e)".contains("task file not found"), "\(e)")
        }
    }
}
