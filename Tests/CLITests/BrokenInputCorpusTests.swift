// Every command on every broken input of the corpus (TestSupport/BrokenInputs): refused with exactly one
// line "error: …", exit status 1, no signal, and nothing left behind (no output, no temporary, the input
// unchanged). Checkpoint cases go through eval (of a dataset and of a task), analyze, cut (by list and by a fresh
// analysis), merge, generate and tokenize; dataset cases through the commands that read a dataset; task cases
// through eval --task.
import Checkpoint
import Foundation
import Support
import Tensor
import TestSupport
import XCTest

final class BrokenInputCorpusTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        try PruneExecutable.requireBuilt()
        scratch = try Fixtures.temporaryDirectory("broken-corpus")
    }

    override func tearDown() { if let scratch { try? FileManager.default.removeItem(at: scratch) } }

    /// Everything under `url`, with sizes, to show that nothing changed.
    func listing(_ url: URL) -> [String] {
        let paths = (FileManager.default.enumerator(atPath: url.path)?.allObjects as? [String] ?? []).sorted()
        return paths.map { path in
            let size = (try? FileManager.default.attributesOfItem(atPath: url.appendingPathComponent(path).path)[.size] as? Int) ?? -1
            return "\(path) \(size ?? -1)"
        }
    }

    /// Runs `args` and checks the refusal; `outputs` must not exist afterwards, nor any temporary beside them.
    func assertRefused(_ args: [String], outputs: [URL], _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try ChildProcess.run(PruneExecutable.url.path, args)
        let context = "\(label): prune \(args.joined(separator: " "))\nstderr: \(r.stderr)"
        XCTAssertFalse(r.signaled, "ended by a signal: \(context)", file: file, line: line)
        XCTAssertEqual(r.status, 1, context, file: file, line: line)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        XCTAssertEqual(lines.count, 1, context, file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: "), context, file: file, line: line)
        XCTAssertFalse(r.stderr.contains("Fatal error"), context, file: file, line: line)
        for out in outputs {
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(out.path) left behind: \(context)", file: file, line: line)
            let parent = out.deletingLastPathComponent()
            let temporaries = ((try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [])
                .filter { AtomicFile.temporaryOwner($0, of: out) != nil }
            XCTAssertEqual(temporaries, [], "temporaries left: \(context)", file: file, line: line)
        }
    }

    func testEveryCommandRefusesEveryBrokenCheckpointInOneLine() throws {
        let cases = try BrokenInputs.checkpoints(in: scratch.appendingPathComponent("models"))
        XCTAssertGreaterThanOrEqual(cases.count, 30)
        let dataset = scratch.appendingPathComponent("data.jsonl")
        try Data("{\"input_ids\": [1, 403, 407, 261, 378, 12, 30, 7]}\n{\"input_ids\": [1, 5, 6, 7, 8, 9]}\n".utf8).write(to: dataset)
        let task = scratch.appendingPathComponent("task.jsonl")
        try Data("{\"context\": \"Once upon a\", \"choices\": [\"time\", \"tree\"], \"gold\": 0}\n".utf8).write(to: task)
        let adapter = scratch.appendingPathComponent("adapter")
        try PEFTAdapter(config: PEFTAdapterConfig(rank: 1, alpha: 2, targets: [.q], layers: [1]),
                        weights: [LoRAWeights(layer: 1, projection: .q, a: Tensor(shape: [1, 64], repeating: 0.1),
                                              b: Tensor(shape: [64, 1], repeating: 0.2))]).write(to: adapter)
        // The unbroken checkpoint passes every command: the refusals below are the broken part's.
        let good = scratch.appendingPathComponent("good")
        try FileManager.default.copyItem(at: Fixtures.stories260K, to: good)
        var runs = 0
        for input in cases + [BrokenInput(name: "unbroken", url: good)] {
            let before = listing(input.url)
            let out = scratch.appendingPathComponent("out-\(input.name)")
            let commands: [[String]] = [
                ["eval", input.url.path, "--dataset", dataset.path, "--context", "8"],
                ["eval", input.url.path, "--task", task.path],
                ["analyze", input.url.path, "--dataset", dataset.path, "--samples", "2", "--context", "8", "-o", out.path],
                ["cut", input.url.path, "--layers", "1", "-o", out.path],
                ["cut", input.url.path, "--block", "1", "--dataset", dataset.path, "--samples", "2", "--context", "8", "--force", "-o", out.path],
                ["merge", input.url.path, "--adapter", adapter.path, "-o", out.path],
                ["generate", input.url.path, "--prompt", "Once upon", "--max-tokens", "3"],
                ["tokenize", input.url.path, "--text", "Once upon a time"],
            ]
            for args in commands {
                runs += 1
                if input.name == "unbroken" {
                    let r = try ChildProcess.run(PruneExecutable.url.path, args)
                    XCTAssertEqual(r.status, 0, "prune \(args.joined(separator: " ")): \(r.stderr)")
                    try? FileManager.default.removeItem(at: out)
                } else {
                    try assertRefused(args, outputs: [out], input.name)
                }
            }
            XCTAssertEqual(listing(input.url), before, "\(input.name): the input is unchanged")
        }
        print("broken-checkpoint corpus: \(cases.count) cases, \(runs) command runs")
    }

    func testEveryDatasetCommandRefusesEveryBrokenDatasetInOneLine() throws {
        let cases = try BrokenInputs.datasets(in: scratch.appendingPathComponent("data"))
        let model = scratch.appendingPathComponent("model")
        try FileManager.default.copyItem(at: Fixtures.stories260K, to: model)
        for input in cases {
            let out = scratch.appendingPathComponent("out-\(input.name)")
            for args in [
                ["eval", model.path, "--dataset", input.url.path, "--context", "8"],
                ["analyze", model.path, "--dataset", input.url.path, "--samples", "2", "--context", "8", "-o", out.path],
                ["cut", model.path, "--metric", "bi", "--count", "1", "--dataset", input.url.path, "--samples", "2", "--context", "8", "-o", out.path],
                ["cut", model.path, "--layers", "2-3", "--replace", "replaceme", "--dataset", input.url.path, "--samples", "2", "--context", "8", "-o", out.path],
            ] {
                try assertRefused(args, outputs: [out], input.name)
            }
        }
        // The unknown format is refused by naming the formats that are supported.
        let parquet = try ChildProcess.run(PruneExecutable.url.path, ["eval", model.path, "--dataset", scratch.appendingPathComponent("data/unknown-extension.parquet").path])
        XCTAssertTrue(parquet.stderr.contains("unsupported dataset format .parquet; supported: .json, .jsonl, .md, .text, .txt"), parquet.stderr)
        print("broken-dataset corpus: \(cases.count) cases, \(cases.count * 3) command runs")
    }

    func testEvalRefusesEveryBrokenTaskInOneLineNamingTheLine() throws {
        let cases = try BrokenInputs.tasks(in: scratch.appendingPathComponent("tasks"))
        let model = scratch.appendingPathComponent("model")
        try FileManager.default.copyItem(at: Fixtures.stories260K, to: model)
        for input in cases { try assertRefused(["eval", model.path, "--task", input.url.path], outputs: [], input.name) }
        let r = try ChildProcess.run(PruneExecutable.url.path, ["eval", model.path, "--task", scratch.appendingPathComponent("tasks/gold-out-of-range.jsonl").path])
        XCTAssertEqual(r.stderr, "error: \(scratch.appendingPathComponent("tasks/gold-out-of-range.jsonl").path): line 2: gold 2 is outside the 2 choices (0…1)\n")
    }
}
