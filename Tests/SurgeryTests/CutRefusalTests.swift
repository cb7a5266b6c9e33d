// Every cut that must not happen is refused with one line naming what is wrong, before anything is
// written; a failure while writing leaves neither a half checkpoint nor a damaged old one.
import Checkpoint
import Foundation
import Llama
import Support
import Surgery
import TestSupport
import XCTest

final class CutRefusalTests: XCTestCase {
    var scratch: URL!
    var model: URL!

    override func setUpWithError() throws {
        scratch = try Fixtures.temporaryDirectory("cut-refusal")
        model = scratch.appendingPathComponent("model")
        let config = LlamaConfig(hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 4, numAttentionHeads: 2, vocabSize: 40,
                                 tieWordEmbeddings: true)
        try LlamaModel.random(config: config, seed: 1).save(to: model)
        try Data("{}".utf8).write(to: model.appendingPathComponent("tokenizer_config.json"))
    }

    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    /// Everything below the scratch directory, to show a refusal wrote nothing.
    func listing() -> [String] {
        (FileManager.default.enumerator(atPath: scratch.path)?.allObjects as? [String] ?? []).sorted()
    }

    func assertRefused(_ drop: String, to out: URL, force: Bool = false, saying phrase: String,
                       file: StaticString = #filePath, line: UInt = #line) {
        let before = listing()
        XCTAssertThrowsError(try LayerCutter(model: model).cut(dropping: try LayerSelection(parsing: drop), to: out, force: force),
                             file: file, line: line) { error in
            XCTAssertTrue(error is PruneError, "\(error)", file: file, line: line)
            let text = "\(error)"
            XCTAssertTrue(text.contains(phrase), text, file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "one line", file: file, line: line)
        }
        XCTAssertEqual(listing(), before, "nothing written", file: file, line: line)
    }

    func testRangeOutsideTheModel() {
        assertRefused("2-4", to: scratch.appendingPathComponent("out"), saying: "layer 4 is outside 0…3")
    }

    func testCutLeavingNoLayer() {
        assertRefused("0-3", to: scratch.appendingPathComponent("out"), saying: "would leave no layer")
    }

    func testOutputIsTheModelOrInsideItOrAroundIt() {
        assertRefused("1", to: model, force: true, saying: "is the model directory itself")
        assertRefused("1", to: model.appendingPathComponent("cut"), force: true, saying: "inside the model directory")
        assertRefused("1", to: model.appendingPathComponent("a/b/../cut"), force: true, saying: "inside the model directory")
        assertRefused("1", to: scratch, force: true, saying: "contains the model directory")
    }

    func testOutputThroughASymbolicLinkToTheModel() throws {
        let link = scratch.appendingPathComponent("link")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: model)
        assertRefused("1", to: link, force: true, saying: "is the model directory itself")
        assertRefused("1", to: link.appendingPathComponent("sub"), force: true, saying: "inside the model directory")
    }

    func testNonEmptyOutputNeedsForce() throws {
        let out = scratch.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: out.appendingPathComponent("keep.txt"))
        assertRefused("1", to: out, saying: "already exists and is not empty (use --force to replace it)")

        let report = try LayerCutter(model: model).cut(dropping: LayerSelection([1]), to: out, force: true)
        XCTAssertEqual(report.kept, [0, 2, 3])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("keep.txt").path), "replaced as a whole")
        XCTAssertEqual(try LlamaModel.load(directory: out).config.numHiddenLayers, 3)
    }

    func testAnEmptyOutputDirectoryNeedsNoForce() throws {
        let out = scratch.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        XCTAssertNoThrow(try LayerCutter(model: model).cut(dropping: LayerSelection([0]), to: out))
        XCTAssertEqual(try LlamaModel.load(directory: out).config.numHiddenLayers, 3)
    }

    func testOutputThatIsAFile() throws {
        let out = scratch.appendingPathComponent("file")
        try Data("x".utf8).write(to: out)
        assertRefused("1", to: out, force: true, saying: "exists and is not a directory")
    }

    func testMissingModel() {
        XCTAssertThrowsError(try LayerCutter(model: scratch.appendingPathComponent("nope"))
            .cut(dropping: LayerSelection([0]), to: scratch.appendingPathComponent("o"))) { error in
            XCTAssertTrue("\(error)".contains("model directory not found"), "\(error)")
        }
    }

    func testFailureMidwayLeavesNoHalfCheckpoint() throws {
        // A dangling link among the companion files fails after config.json has been written.
        try FileManager.default.createSymbolicLink(at: model.appendingPathComponent("special_tokens_map.json"),
                                                   withDestinationURL: scratch.appendingPathComponent("missing"))
        let out = scratch.appendingPathComponent("out")
        XCTAssertThrowsError(try LayerCutter(model: model).cut(dropping: LayerSelection([1]), to: out))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(), ["model"], "no temporary left")

        // With --force over an old checkpoint, the old one survives the failure untouched.
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: out.appendingPathComponent("old.txt"))
        XCTAssertThrowsError(try LayerCutter(model: model).cut(dropping: LayerSelection([1]), to: out, force: true))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), ["old.txt"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(), ["model", "out"])
    }
}
