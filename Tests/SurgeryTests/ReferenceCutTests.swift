// Cutting layers 2-3 of the real stories260K checkpoint against transformers' logits of the same cut.
import Checkpoint
import Foundation
import Llama
import Support
import Surgery
import TestSupport
import XCTest

final class ReferenceCutTests: XCTestCase {
    func testCutCheckpointReloadsAndGivesTransformersLogits() throws {
        let ref = try Reference()
        let out = try Fixtures.temporaryDirectory("cut").appendingPathComponent("stories-cut")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        let layers = try XCTUnwrap(ref.value("cut.layers") as? String)
        let report = try LayerCutter(model: ref.modelDirectory).cut(dropping: try LayerSelection(parsing: layers), to: out)
        XCTAssertEqual(report.kept, (ref.value("cut.kept") as! [NSNumber]).map(\.intValue))
        XCTAssertEqual(report.dropped, [2, 3])

        let model = try LlamaModel.load(directory: out)
        XCTAssertEqual(model.config.numHiddenLayers, 3)
        XCTAssertNil(model.untiedLMHead, "tied embeddings stay tied")
        let rows = ref.idRows("input_ids")
        let logits = model.forward(tokens: rows.flatMap { $0 }, batch: rows.count, length: rows[0].count).logits
        let err = logits.maxAbsDifference(try ref.tensor("cut.logits"))
        assertPinned("cut.logits", Double(err), within: Tolerance.cutLogits)
        XCTAssertEqual(report.parametersAfter, model.parameterCount)
    }

    func testEveryOtherConfigKeyAndTheTokenizerFilesSurvive() throws {
        let ref = try Reference()
        let out = try Fixtures.temporaryDirectory("cut").appendingPathComponent("stories-cut")
        defer { try? FileManager.default.removeItem(at: out.deletingLastPathComponent()) }
        let report = try LayerCutter(model: ref.modelDirectory).cut(dropping: LayerSelection([1]), to: out)
        let before = try ConfigJSON.read(ref.modelDirectory.appendingPathComponent("config.json"))
        let after = try ConfigJSON.read(out.appendingPathComponent("config.json"))
        XCTAssertEqual(Set(before.keys), Set(after.keys))
        for (key, value) in before where key != "num_hidden_layers" {
            XCTAssertEqual("\(value)", "\(after[key]!)", key)
        }
        // Whole floats stay floats, as transformers wrote them.
        let text = String(decoding: FileManager.default.contents(atPath: out.appendingPathComponent("config.json").path)!, as: UTF8.self)
        XCTAssertTrue(text.contains("\"rope_theta\": 10000.0,"), text)
        XCTAssertTrue(text.contains("\"rms_norm_eps\": 1e-05,"), text)
        XCTAssertTrue(text.contains("\"pad_token_id\": null,"), text)
        XCTAssertTrue(text.contains("\"tie_word_embeddings\": true,"), text)
        XCTAssertEqual((after["num_hidden_layers"] as? NSNumber)?.intValue, 4)
        XCTAssertEqual(report.configKeysEdited, ["num_hidden_layers"])
        for name in ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
            let a = FileManager.default.contents(atPath: ref.modelDirectory.appendingPathComponent(name).path)
            XCTAssertNotNil(a, name)
            XCTAssertEqual(a, FileManager.default.contents(atPath: out.appendingPathComponent(name).path), name)
        }
        XCTAssertTrue(FileManager.default.isWritableFile(atPath: out.appendingPathComponent("tokenizer.json").path),
                      "copies of read-only files are writable")
    }
}
