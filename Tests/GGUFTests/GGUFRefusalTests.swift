// What GGUF export refuses, each in one PruneError naming the file at fault: RoPE scaling llama.cpp's llama
// architecture cannot reproduce, a BPE pre-tokenizer llama.cpp has no name for, a checkpoint without a tokenizer, an
// adapter of another model, an existing output without --force, values a type cannot store; and a refused write
// leaves neither the file nor a temporary behind.
import Checkpoint
import Foundation
import GGUF
import Support
import Surgery
import Tensor
import TestSupport
import XCTest

final class GGUFRefusalTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("gguf-refusals") }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    /// The refusal of exporting `model`, as text ("" when it was accepted).
    func refusal(_ model: URL, _ type: GGUFFileType? = nil, force: Bool = false, to name: String = "out.gguf") -> String {
        do {
            _ = try GGUFModelExport.write(model: model, to: scratch.appendingPathComponent(name), fileType: type, force: force)
            return ""
        } catch let error as PruneError { return error.description } catch { return "not a PruneError: \(error)" }
    }

    /// The fixture `name` with its tokenizer and `rope` as config.json's rope_parameters.
    func fixture(_ name: String, rope: [String: Any]) throws -> URL {
        let model = try TinyCheckpoints.fixture(name, in: scratch)
        let url = model.appendingPathComponent("config.json")
        var config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        config["rope_parameters"] = rope
        try JSONSerialization.data(withJSONObject: config).write(to: url)
        return model
    }

    func testRopeScalingLlamaCppCannotReproduceIsRefused() throws {
        let dynamic = try fixture("untied-f32", rope: ["rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0])
        let text = refusal(dynamic)
        XCTAssertTrue(text.hasPrefix(dynamic.appendingPathComponent("config.json").path) && text.contains("\"dynamic\""), text)
        try FileManager.default.removeItem(at: dynamic)
        let yarn = try fixture("yarn-rope", rope: ["rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8,
                                                   "rope_theta": 10000.0, "beta_fast": 16.0])
        XCTAssertTrue(refusal(yarn).contains("beta_fast 16.0 cannot be exported"), refusal(yarn))
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("out.gguf").path))
    }

    func testPreTokenizerWithoutALlamaCppNameIsRefused() throws {
        let model = try TinyCheckpoints.fixture("untied-f32", in: scratch, preTokenizer: [
            "type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": "\\s+"], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false],
            ],
        ])
        let text = refusal(model)
        XCTAssertTrue(text.hasPrefix(model.appendingPathComponent("tokenizer.json").path) && text.contains("has no llama.cpp name"), text)
        XCTAssertTrue(text.contains("Split(Regex \"\\\\s+\", Isolated, invert: false)"), text)
    }

    func testCheckpointWithoutTokenizerIsRefused() throws {
        let model = scratch.appendingPathComponent("bare")
        try FileManager.default.copyItem(at: Fixtures.file("checkpoints/untied-f32"), to: model)
        XCTAssertEqual(refusal(model), "\(model.path): no tokenizer.model or tokenizer.json: a GGUF file needs the vocabulary")
    }

    func testExistingOutputNeedsForceAndADirectoryIsRefused() throws {
        XCTAssertEqual(refusal(Fixtures.stories260K), "")
        let out = scratch.appendingPathComponent("out.gguf")
        XCTAssertEqual(refusal(Fixtures.stories260K), "\(out.path): already exists (--force to replace it)")
        XCTAssertEqual(refusal(Fixtures.stories260K, .f16, force: true), "")
        XCTAssertEqual(try GGUFReader(url: out).value("general.file_type"), .uint32(1), "replaced by the f16 file")
        try FileManager.default.createDirectory(at: scratch.appendingPathComponent("dir.gguf"), withIntermediateDirectories: false)
        XCTAssertTrue(refusal(Fixtures.stories260K, to: "dir.gguf").contains("is a directory"))
    }

    func testAdapterOfAnotherModelIsRefused() throws {
        let adapter = scratch.appendingPathComponent("adapter")
        try RandomAdapter.write(for: Fixtures.stories260K, to: adapter, rank: 2, alpha: 4)
        let cut = scratch.appendingPathComponent("cut")
        _ = try LayerCutter(model: Fixtures.stories260K).cut(dropping: LayerSelection([3, 4]), to: cut)
        XCTAssertThrowsError(try GGUFAdapterExport.write(adapter: adapter, model: cut, to: scratch.appendingPathComponent("a.gguf"),
                                                         fileType: nil, force: false)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(adapter.path) && text.contains("differently-cut"), text)
        }
    }

    func testValuesATypeCannotStoreAreRefusedAndNothingIsLeft() throws {
        var values: [Float] = Array(repeating: 0.5, count: 64)
        XCTAssertNil(GGUFQuantization.problem(values, count: 64, as: .f16))
        values[3] = 70000
        XCTAssertTrue(GGUFQuantization.problem(values, count: 64, as: .f16)?.contains("beyond f16's range") == true)
        XCTAssertNil(GGUFQuantization.problem(values, count: 64, as: .bf16))
        values[3] = 1e7
        XCTAssertTrue(GGUFQuantization.problem(values, count: 64, as: .q8_0)?.contains("too large for q8_0") == true)
        values[5] = .nan
        XCTAssertEqual(GGUFQuantization.problem(values, count: 64, as: .f32), "holds a non-finite value (nan at element 5)")

        let out = scratch.appendingPathComponent("bad.gguf")
        let good = GGUFTensorItem(name: "good", shape: [2, 32], type: .f16) { Tensor(shape: [2, 32], repeating: 1) }
        let bad = GGUFTensorItem(name: "bad", shape: [2, 32], type: .q8_0) { Tensor(shape: [2, 32], repeating: .infinity) }
        XCTAssertThrowsError(try GGUFWriter.write(metadata: [], tensors: [good, bad], to: out)) { error in
            XCTAssertEqual("\(error)", "\(out.path): tensor \"bad\" holds a non-finite value (inf at element 0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [], "no file, no temporary")
    }
}
