// The built `prune` executable run as a user runs it: exit codes, the one-line errors of refused cuts,
// and analyze → cut --block / --metric through analysis.json, on the real stories260K checkpoint.
import Foundation
import Support
import TestSupport
import XCTest

final class PruneCommandLineTests: XCTestCase {
    let model = Fixtures.stories260K
    var scratch: URL!

    override func setUpWithError() throws {
        try PruneExecutable.requireBuilt()
        scratch = try Fixtures.temporaryDirectory("cli")
    }

    override func tearDown() { if let scratch { try? FileManager.default.removeItem(at: scratch) } }

    typealias Result = (status: Int32, stdout: String, stderr: String)

    func prune(_ arguments: [String]) throws -> Result { try PruneExecutable.run(arguments) }


    func testBadRangesAreRefusedWithOneLineAndNothingWritten() throws {
        let out = scratch.appendingPathComponent("out")
        assertOneLineError(try prune(["cut", model.path, "--layers", "2-7", "-o", out.path]), containing: "layer 5 is outside 0…4")
        assertOneLineError(try prune(["cut", model.path, "--layers", "0-4", "-o", out.path]), containing: "would leave no layer")
        assertOneLineError(try prune(["cut", model.path, "--layers", "4-2", "-o", out.path]), containing: "runs backwards")
        assertOneLineError(try prune(["cut", model.path, "--layers", "x", "-o", out.path]), containing: "--layers")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    func testABadRecipeIsOneLineNamingFileLineAndKey() throws {
        let recipe = scratch.appendingPathComponent("bad.yaml")
        try "model: m\noutput: o\ndata:\n  valid: v\ncut:\n  count: 1\n  strategy: angualr\n".write(to: recipe, atomically: true, encoding: .utf8)
        assertOneLineError(try prune(["run", recipe.path]), containing: "bad.yaml:7: cut.strategy: \"angualr\" is not one of angular, bi, last, loss, layers")
        let quickstart = Fixtures.projectRoot.appendingPathComponent("Recipes/quickstart.yaml").path
        assertOneLineError(try prune(["run", quickstart, "heal.stpes=5"]), containing: "(override heal.stpes=5): heal.stpes: unknown key")
        let resolved = try prune(["run", quickstart, "heal.steps=7", "--check"])
        XCTAssertEqual(resolved.status, 0, resolved.stderr)
        XCTAssertTrue(resolved.stdout.contains("steps: 7"), resolved.stdout)
    }

    /// A shipped recipe runs from any directory: its paths start in Recipes/, an override's in the working directory.
    func testARecipeRunsFromAnotherDirectory() throws {
        let quickstart = Fixtures.projectRoot.appendingPathComponent("Recipes/quickstart.yaml").path
        let r = try PruneExecutable.run(["run", quickstart, "output=study", "analyze.samples=4", "analyze.early_exit=false",
                                         "cut.strategies=[last]", "heal.enabled=false", "export.enabled=false", "report.prompts=[]",
                                         "threads=1"], currentDirectory: scratch)
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = URL(fileURLWithPath: scratch.resolvedPath).appendingPathComponent("study/report.md")
        XCTAssertTrue(FileManager.default.fileExists(atPath: report.path), "the override's output is in the working directory: \(r.stdout)")
        let resolved = try String(contentsOf: report.deletingLastPathComponent().appendingPathComponent("recipe.yaml"), encoding: .utf8)
        XCTAssertTrue(resolved.contains("model: \(Fixtures.stories260K.standardizedFileURL.path)\n"), resolved)
    }

    func testNonEmptyOutputNeedsForce() throws {
        let out = scratch.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: out.appendingPathComponent("notes.txt"))
        assertOneLineError(try prune(["cut", model.path, "--layers", "2-3", "-o", out.path]), containing: "use --force")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), ["notes.txt"])

        let r = try prune(["cut", model.path, "--layers", "2-3", "-o", out.path, "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("dropped (0-based, inclusive): 2-3"), r.stdout)
        XCTAssertTrue(r.stdout.contains("layer_range: [0, 2]"), r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("config.json").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("notes.txt").path))
    }

    func testOutputInsideTheModelIsRefused() throws {
        assertOneLineError(try prune(["cut", model.path, "--layers", "1", "-o", model.appendingPathComponent("cut").path]),
                           containing: "inside the model directory")
    }

    func testConflictingSelectionsAreUsageErrors() throws {
        let out = scratch.appendingPathComponent("out").path
        let both = try prune(["cut", model.path, "--layers", "1", "--block", "2", "-o", out])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.stderr.contains("exactly one of --layers, --block, --metric"), both.stderr)
        let noSource = try prune(["cut", model.path, "--block", "2", "-o", out])
        XCTAssertNotEqual(noSource.status, 0)
        XCTAssertTrue(noSource.stderr.contains("--analysis"), noSource.stderr)
    }

    func testAnalyzeThenCutTheBestBlockAndTheLowestInfluenceLayer() throws {
        let ref = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.file("reference/stories260K/reference.json"))) as! [String: Any]
        let rows = ref["calib_input_ids"] as! [[Int]]
        let dataset = scratch.appendingPathComponent("calib.jsonl")
        try Data(rows.map { "{\"input_ids\": \($0)}" }.joined(separator: "\n").utf8).write(to: dataset)

        let dir = scratch.appendingPathComponent("analysis")
        let analyze = try prune(["analyze", model.path, "--dataset", dataset.path, "--samples", "8", "--context", "48",
                                 "--block-sizes", "1-4", "--early-exit", "-o", dir.path])
        XCTAssertEqual(analyze.status, 0, analyze.stderr)
        XCTAssertTrue(analyze.stdout.contains("   2  2-3           0.2079"), analyze.stdout)
        for name in ["analysis.json", "analysis.h5", "analysis.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path), name)
        }

        let json = dir.appendingPathComponent("analysis.json").path
        let block = try prune(["cut", model.path, "--block", "2", "--analysis", json, "-o", scratch.appendingPathComponent("b").path])
        XCTAssertEqual(block.status, 0, block.stderr)
        XCTAssertTrue(block.stdout.contains("dropped (0-based, inclusive): 2-3"), block.stdout)
        // The cut says where it came from: model card and prune_cut.json.
        let origin = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: scratch.appendingPathComponent("b/prune_cut.json"))) as? [String: Any])
        XCTAssertEqual(origin["source_model"] as? String, model.path)
        XCTAssertEqual(origin["dropped"] as? [Int], [2, 3])
        XCTAssertEqual(origin["kept"] as? [Int], [0, 1, 4])
        let selection = try XCTUnwrap(origin["selection"] as? [String: Any])
        XCTAssertEqual(selection["method"] as? String, "block")
        XCTAssertEqual(selection["analysis"] as? String, json)
        XCTAssertEqual(origin["command"] as? String, "prune cut \(model.path) --block 2 --analysis \(json) -o \(scratch.appendingPathComponent("b").path)")
        XCTAssertTrue((origin["tool"] as? String)?.hasPrefix("prune") ?? false)
        let card = try String(contentsOf: scratch.appendingPathComponent("b/README.md"), encoding: .utf8)
        XCTAssertTrue(card.contains("`--block 2`: best block of 2: layers 2-3 (d = 0.2079)"), card)

        let bi = try prune(["cut", model.path, "--metric", "bi", "--count", "1", "--analysis", json, "-o", scratch.appendingPathComponent("m").path])
        XCTAssertEqual(bi.status, 0, bi.stderr)
        XCTAssertTrue(bi.stdout.contains("dropped (0-based, inclusive): 2 "), bi.stdout)
        let biCard = try String(contentsOf: scratch.appendingPathComponent("m/README.md"), encoding: .utf8)
        XCTAssertTrue(biCard.contains("`--metric bi --count 1`: the 1 layers with the lowest Block Influence: 2"), biCard)

        // Without --analysis, a fresh analysis of --dataset picks the same block.
        let fresh = try prune(["cut", model.path, "--block", "2", "--dataset", dataset.path, "--samples", "8", "--context", "48",
                               "-o", scratch.appendingPathComponent("f").path])
        XCTAssertEqual(fresh.status, 0, fresh.stderr)
        XCTAssertTrue(fresh.stdout.contains("dropped (0-based, inclusive): 2-3"), fresh.stdout)

        let tooBig = try prune(["analyze", model.path, "--dataset", dataset.path, "--block-sizes", "1-5", "-o", dir.path, "--force"])
        assertOneLineError(tooBig, containing: "block size 5 is outside 1…4")
    }
}
