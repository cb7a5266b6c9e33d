// A cut checkpoint says where it came from: README.md (model card) and prune_cut.json beside the weights,
// with the source, the layers dropped and kept, how they were chosen, the command and the tool; the
// weights and config.json are the same as without them.
import Checkpoint
import Foundation
import Llama
import Support
import Surgery
import TestSupport
import XCTest

final class CutProvenanceTests: XCTestCase {
    var scratch: URL!
    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("cut-provenance") }
    override func tearDown() { if let scratch { try? FileManager.default.removeItem(at: scratch) } }

    func cut(_ layers: String, selection: CutSelection?, to name: String, from source: URL = Fixtures.stories260K) throws -> URL {
        let out = scratch.appendingPathComponent(name)
        _ = try LayerCutter(model: source).cut(dropping: try LayerSelection(parsing: layers), to: out, selection: selection,
                                               command: ["prune", "cut", source.path, "--block", "2", "--analysis", "my dir/a.json"],
                                               tool: "prune 9.9")
        return out
    }

    func testPruneCutJSONHoldsTheFacts() throws {
        let selection = CutSelection(method: "block", option: "--block 2", analysis: "my dir/a.json",
                                     reason: "best block of 2: layers 2-3 (d = 0.2079)")
        let out = try cut("2-3", selection: selection, to: "block")
        let origin = try JSONDecoder().decode(CutOrigin.self, from: Data(contentsOf: out.appendingPathComponent("prune_cut.json")))
        XCTAssertEqual(origin.sourceModel, Fixtures.stories260K.path)
        XCTAssertEqual(origin.layersBefore, 5)
        XCTAssertEqual(origin.dropped, [2, 3])
        XCTAssertEqual(origin.kept, [0, 1, 4])
        XCTAssertEqual(origin.droppedRanges, "2-3")
        XCTAssertEqual(origin.keptRanges, "0-1,4")
        XCTAssertEqual(origin.selection, selection)
        XCTAssertEqual(origin.command, "prune cut \(Fixtures.stories260K.path) --block 2 --analysis 'my dir/a.json'")
        XCTAssertEqual(origin.tool, "prune 9.9")
        let keys = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("prune_cut.json"))) as? [String: Any])
        XCTAssertEqual(Set(keys.keys), ["source_model", "layers_before", "dropped", "kept", "dropped_ranges", "kept_ranges",
                                        "selection", "command", "tool"])
    }

    func testModelCardStatesTheFactsInWords() throws {
        let selection = CutSelection(method: "block", option: "--block 2", analysis: "out/analysis/analysis.json",
                                     reason: "best block of 2: layers 2-3 (d = 0.2079)")
        let card = try String(contentsOf: try cut("2-3", selection: selection, to: "card").appendingPathComponent("README.md"), encoding: .utf8)
        for fact in ["# stories260K, 3 of 5 layers", "`\(Fixtures.stories260K.path)`", "| layers dropped (0-based, inclusive) | 2-3 (2, 3) |",
                     "| layers kept (source numbering) | 0-1,4 (0, 1, 4) |", "`--block 2`: best block of 2: layers 2-3 (d = 0.2079)",
                     "| analysis | `out/analysis/analysis.json` |", "| tool | prune 9.9 |", "--analysis 'my dir/a.json'", "prune_cut.json"] {
            XCTAssertTrue(card.contains(fact), "card lacks \(fact):\n\(card)")
        }
        XCTAssertFalse(card.contains("## The source model's card"), "stories260K ships no README.md")
    }

    func testWithoutASelectionTheLayersAreSaidToBeGiven() throws {
        let out = try cut("1", selection: nil, to: "plain")
        let origin = try JSONDecoder().decode(CutOrigin.self, from: Data(contentsOf: out.appendingPathComponent("prune_cut.json")))
        XCTAssertEqual(origin.selection.method, "layers")
        XCTAssertEqual(origin.selection.option, "--layers 1")
    }

    func testTheSourceCardsFrontMatterStaysOnTop() throws {
        let source = scratch.appendingPathComponent("source")
        try FileManager.default.copyItem(at: Fixtures.stories260K, to: source)
        try "---\nlicense: mit\ntags: [tiny]\n---\n# TinyStories 260K\nA small model.\n".write(
            to: source.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let card = try String(contentsOf: try cut("1", selection: nil, to: "fm", from: source).appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(card.hasPrefix("---\nlicense: mit\ntags: [tiny]\n---\n\n# source, 4 of 5 layers\n"), card)
        XCTAssertTrue(card.hasSuffix("## The source model's card\n\n# TinyStories 260K\nA small model.\n"), card)
    }

    func testWeightsAndConfigAreThoseOfAPlainCut() throws {
        let out = try cut("2-3", selection: nil, to: "same")
        let model = try LlamaModel.load(directory: out)
        XCTAssertEqual(model.config.numHiddenLayers, 3)
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        XCTAssertEqual(names, ["README.md", "config.json", "mergekit_config.yml", "model.safetensors", "prune_cut.json", "special_tokens_map.json",
                               "tokenizer.json", "tokenizer.model", "tokenizer_config.json"], "no temporary files left")
        let config = try ConfigJSON.read(out.appendingPathComponent("config.json"))
        XCTAssertNil(config["prune_cut"], "provenance stays out of config.json")
    }

    func testShellQuotingReadsBack() {
        XCTAssertEqual(CutOrigin(sourceModel: "m", layersBefore: 2, dropped: [0], selection: CutSelection(method: "layers", option: "--layers 0", reason: "r"),
                                 command: ["prune", "a b", "it's", "", "x=1"], tool: "prune").command,
                       #"prune 'a b' 'it'\''s' '' x=1"#)
    }
}
