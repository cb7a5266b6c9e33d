// The `prune` binary as a user meets it: working commands, and bad input answered by one error line
// naming the file and a non-zero exit.
import Foundation
import Tensor
import TestSupport
import XCTest

final class CLIBasicsTests: XCTestCase {
    let model = Fixtures.projectRoot.appendingPathComponent("Checkpoints/stories260K").path
    let dataset = Fixtures.projectRoot.appendingPathComponent("Recipes/data/kjv-valid.jsonl").path

    func assertOneLineError(_ args: [String], mentions words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try PruneExecutable.run(args)
        XCTAssertNotEqual(r.status, 0, "exit status", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one error line, got: \(r.stderr)", file: file, line: line)
        for w in words { XCTAssertTrue(r.stderr.contains(w), "“\(r.stderr)” should mention “\(w)”", file: file, line: line) }
    }

    func testTokenizeJSON() throws {
        let r = try PruneExecutable.run(["tokenize", model, "--text", "Once upon a time", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), #"{"ids":[1,403,407,261,378]}"#)
    }

    func testGenerateGreedy() throws {
        let r = try PruneExecutable.run(["generate", model, "--prompt", "Once upon a time", "--max-tokens", "20"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("Once upon a time, there was a little girl named Lily."), r.stdout)
    }

    /// transformers prints "Once upon a time": the space SentencePiece puts before "upon" is kept.
    func testGenerateKeepsTheSpaceAfterAOneWordPrompt() throws {
        let r = try PruneExecutable.run(["generate", model, "--prompt", "Once", "--temperature", "0", "--max-tokens", "4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("Once upon a time"), r.stdout)
    }

    /// analyze says at once what it loaded and what each phase costs, warns when the data holds fewer
    /// samples than asked, and its progress ends at 100% (all on stderr; stdout is the result).
    func testAnalyzeSaysWhatItDoes() throws {
        let out = try Fixtures.temporaryDirectory("cli").appendingPathComponent("analysis")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        let r = try PruneExecutable.run(["analyze", model, "--dataset", dataset, "--samples", "30", "--context", "32",
                                         "--removal-scan", "-o", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "warning: --samples 30 is more than \(dataset) holds (28 records of two or more tokens); using 28")
        XCTAssertTrue(lines[1].hasPrefix("model: \(model): 5 layers, hidden 64, 8/4 heads, ffn 172, vocab 512, 260032 parameters"), r.stderr)
        XCTAssertEqual(lines[2], "data: \(dataset): 28 samples, 896 tokens (context 32), 7 batches of up to 4")
        XCTAssertTrue(lines.contains { $0.hasPrefix("  removal scan") && $0.contains("× a forward pass") }, r.stderr)
        XCTAssertFalse(lines.contains { $0.hasPrefix("  early exit") }, "only the phases that run are listed")
        XCTAssertTrue(lines.last!.contains("removal scan 5/5  100%"), r.stderr)
        XCTAssertFalse(r.stdout.contains("analyze  batch"), "progress stays off stdout")
    }

    func testEvalJSONOnPreTokenizedReferenceInputsEqualsReferenceLoss() throws {
        let ref = try Reference()
        let rows = ref.idRows("input_ids")
        let url = try Fixtures.temporaryDirectory("cli").appendingPathComponent("ids.jsonl")
        try rows.map { #"{"input_ids": [\#($0.map(String.init).joined(separator: ","))]}"# }.joined(separator: "\n")
            .write(to: url, atomically: true, encoding: .utf8)
        let r = try PruneExecutable.run(["eval", model, "--dataset", url.path, "--context", "\(rows[0].count)", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        assertPinned("cli.loss", abs((obj["loss"] as! NSNumber).doubleValue - ref.double("loss")), within: Tolerance.loss)
        XCTAssertEqual((obj["tokens"] as! NSNumber).intValue, rows.count * (rows[0].count - 1))
        assertPinned("cli.perplexity", abs((obj["perplexity"] as! NSNumber).doubleValue / exp(ref.double("loss")) - 1), within: Tolerance.loss,
                     "relative")
    }

    func testUsageErrorsAreOneLineToo() throws {
        try assertOneLineError(["eval"], mentions: ["<model>"])
        try assertOneLineError(["generate", model, "--prompt", "hi", "--top-p", "3"], mentions: ["--top-p"])
        try assertOneLineError(["eval", model, "--dataset", dataset, "--context", "1"], mentions: ["--context"])
        let help = try PruneExecutable.run(["eval", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("--dataset"))
    }

    func testBadInputGivesOneLineAndNonZeroExit() throws {
        let tmp = try Fixtures.temporaryDirectory("cli")
        try assertOneLineError(["eval", "/no/such/model", "--dataset", dataset], mentions: ["/no/such/model", "not found"])
        let empty = tmp.appendingPathComponent("empty.jsonl")
        try "".write(to: empty, atomically: true, encoding: .utf8)
        try assertOneLineError(["eval", model, "--dataset", empty.path], mentions: [empty.path, "empty"])
        try assertOneLineError(["eval", model, "--dataset", tmp.appendingPathComponent("missing.txt").path], mentions: ["missing.txt", "not found"])
        // Ids from another model's tokenizer.
        let foreign = tmp.appendingPathComponent("foreign.jsonl")
        try #"{"input_ids": [1, 5, 40000]}"#.write(to: foreign, atomically: true, encoding: .utf8)
        try assertOneLineError(["eval", model, "--dataset", foreign.path], mentions: [foreign.path, "40000", "vocabulary"])
        try assertOneLineError(["analyze", model, "--dataset", foreign.path, "-o", tmp.appendingPathComponent("an").path],
                               mentions: [foreign.path, "40000"])
        // A checkpoint without a tokenizer: weights and config only.
        let bare = tmp.appendingPathComponent("bare")
        try FileManager.default.createDirectory(at: bare, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: model + "/" + f, toPath: bare.appendingPathComponent(f).path)
        }
        try assertOneLineError(["tokenize", bare.path, "--text", "hi"], mentions: [bare.path, "tokenizer"])
        try assertOneLineError(["generate", bare.path, "--prompt", "hi"], mentions: [bare.path, "tokenizer"])
        // A truncated weights file.
        let cut = tmp.appendingPathComponent("truncated")
        try FileManager.default.createDirectory(at: cut, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: model + "/config.json", toPath: cut.appendingPathComponent("config.json").path)
        let weights = try Data(contentsOf: URL(fileURLWithPath: model + "/model.safetensors"))
        try weights.prefix(weights.count / 2).write(to: cut.appendingPathComponent("model.safetensors"))
        try assertOneLineError(["eval", cut.path, "--dataset", dataset], mentions: ["model.safetensors", "past the end"])
    }

    /// A kernel set forced by the environment that is slower than the one prune would choose is named in --version
    /// beside the faster one and how to let prune choose; one that is the best for this CPU gets no note.
    func testVersionSaysWhenTheEnvironmentForcesSlowerKernels() throws {
        guard let best = CPUInfo.current.bestOpenBLASCore else { throw XCTSkip("no AVX2 on this CPU: OpenBLAS chooses alone") }
        let slow = try PruneExecutable.run(["--version"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(slow.status, 0, slow.stderr)
        let note = slow.stdout.split(separator: "\n").filter { $0.hasPrefix("note: ") }
        XCTAssertEqual(note.count, 1, slow.stdout)
        XCTAssertTrue(note.first.map { $0.contains("OPENBLAS_CORETYPE=Prescott") && $0.contains(best) && $0.contains("unset OPENBLAS_CORETYPE") } ?? false,
                      slow.stdout)
        let right = try PruneExecutable.run(["--version"], environment: ["OPENBLAS_CORETYPE": best])
        XCTAssertFalse(right.stdout.contains("note: "), right.stdout)
    }
}
