// `prune eval MODEL --task FILE`: the human line and --json say the same scores; exactly one of --dataset and --task;
// the dataset-only options are refused with --task.
import Foundation
import Support
import TestSupport
import XCTest

final class EvalTaskCommandTests: XCTestCase {
    let model = Fixtures.stories260K.path
    let task = Fixtures.file("tasks/handwritten.jsonl").path

    override func setUpWithError() throws { try PruneExecutable.requireBuilt() }

    func testTheHumanLineAndJSONSayTheSameScores() throws {
        let human = try PruneExecutable.run(["eval", model, "--task", task])
        XCTAssertEqual(human.status, 0, human.stderr)
        let json = try PruneExecutable.run(["eval", model, "--task", task, "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        XCTAssertEqual(json.stderr, "", "no progress lines with --json")
        let o = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(Set(o.keys), ["acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "n"])
        let n = o["n"] as! Int, acc = o["acc"] as! Double, accNorm = o["acc_norm"] as! Double
        XCTAssertEqual(n, 20)
        XCTAssertEqual(acc * Double(n), (acc * Double(n)).rounded(), accuracy: 1e-9, "acc is a count over n")
        func f(_ key: String) -> String { String(format: "%.4f", o[key] as! Double) }
        XCTAssertEqual(human.stdout, "acc \(f("acc")) ± \(f("acc_stderr"))  acc_norm \(f("acc_norm")) ± \(f("acc_norm_stderr"))  (n = 20)\n")
        XCTAssertEqual(o["acc_stderr"] as! Double, (acc * (1 - acc) / Double(n - 1)).squareRoot(), accuracy: 1e-12,
                       "the sample standard error of a 0/1 mean")
        XCTAssertEqual(o["acc_norm_stderr"] as! Double, (accNorm * (1 - accNorm) / Double(n - 1)).squareRoot(), accuracy: 1e-12)
    }

    func testOneQuestionHasNoStandardError() throws {
        let dir = try Fixtures.temporaryDirectory("one-question")
        defer { try? FileManager.default.removeItem(at: dir) }
        let one = dir.appendingPathComponent("one.jsonl")
        try Data("{\"context\": \"Once upon a\", \"choices\": [\"time\", \"tree\"], \"gold\": 0}\n".utf8).write(to: one)
        let human = try PruneExecutable.run(["eval", model, "--task", one.path])
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertTrue(human.stdout.hasPrefix("acc 1.0000 ± n/a  acc_norm "), human.stdout)
        let json = try PruneExecutable.run(["eval", model, "--task", one.path, "--json"])
        let o = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertTrue(o["acc_stderr"] is NSNull, "\(o)")
    }

    func testExactlyOneOfDatasetAndTask() throws {
        let dataset = Fixtures.kjvValid.path
        assertOneLineError(try PruneExecutable.run(["eval", model]), containing: "exactly one of --dataset and --task")
        assertOneLineError(try PruneExecutable.run(["eval", model, "--dataset", dataset, "--task", task]), containing: "exactly one of --dataset and --task")
        for option in [["--context", "64"], ["--stride", "8"], ["--reference", model]] {
            assertOneLineError(try PruneExecutable.run(["eval", model, "--task", task] + option), containing: "\(option[0]) applies to --dataset, not --task")
        }
        assertOneLineError(try PruneExecutable.run(["eval", model, "--task", task, "--batch-size", "0"]), containing: "--batch-size must be positive")
    }
}
