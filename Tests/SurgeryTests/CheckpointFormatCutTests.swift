// Cuts of checkpoints in the layouts real models come in (bf16, f16, sharded, untied lm_head, extra
// config keys and files), made here from random models: the cut keeps the layout and computes what the
// full model computes with the same layers skipped.
import Checkpoint
import Foundation
import Llama
import Support
import Surgery
import TestSupport
import XCTest

final class CheckpointFormatCutTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("cut-format") }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    /// 6 layers, GQA, small enough to save in milliseconds.
    func config(tied: Bool) -> LlamaConfig {
        LlamaConfig(hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 6, numAttentionHeads: 4, numKeyValueHeads: 2,
                    vocabSize: 80, tieWordEmbeddings: tied, maxPositionEmbeddings: 64)
    }

    let tokens: [Int32] = [1, 5, 17, 42, 9, 33, 2, 70, 1, 8, 8, 61, 29, 3, 44, 12]

    /// Max |logits of the cut model − logits of the source with `dropped` skipped| on two sequences of 8.
    func skippingError(source: URL, cut: URL, dropped: [Int]) throws -> Float {
        let full = try LlamaModel.load(directory: source)
        let small = try LlamaModel.load(directory: cut)
        XCTAssertEqual(small.config.numHiddenLayers, full.config.numHiddenLayers - dropped.count)
        let expected = full.forward(tokens: tokens, batch: 2, length: 8, skipping: Set(dropped)).logits
        let got = small.forward(tokens: tokens, batch: 2, length: 8).logits
        XCTAssertGreaterThan(expected.maxAbs, 0)
        return got.maxAbsDifference(expected)
    }

    func dtypes(_ directory: URL) throws -> Set<SafetensorsDType> {
        let store = try CheckpointTensors(directory: directory)
        return Set(store.files.flatMap { $0.entries.map(\.dtype) })
    }

    func testBF16TiedCutKeepsBytesDtypeAndTying() throws {
        let source = scratch.appendingPathComponent("bf16")
        try LlamaModel.random(config: config(tied: true), seed: 3).save(to: source, dtype: .BF16)
        let out = scratch.appendingPathComponent("bf16-cut")
        let report = try LayerCutter(model: source).cut(dropping: try LayerSelection(parsing: "1,3-4"), to: out)
        XCTAssertEqual(report.kept, [0, 2, 5])
        XCTAssertEqual(try dtypes(out), [.BF16])
        let cut = try CheckpointTensors(directory: out)
        XCTAssertFalse(cut.contains(WeightNames.lmHead), "a tied checkpoint gets no lm_head.weight")
        XCTAssertFalse(cut.isSharded)
        // Renumbered layer 1 of the cut is source layer 2, byte for byte.
        let src = try CheckpointTensors(directory: source)
        for (old, new) in [(0, 0), (2, 1), (5, 2)] {
            let a = try src.entry(WeightNames.projection(.q, layer: old)), b = try cut.entry(WeightNames.projection(.q, layer: new))
            XCTAssertEqual(Array(try a.file.rawBytes(a.entry.name)), Array(try b.file.rawBytes(b.entry.name)), "layer \(old) → \(new)")
        }
        XCTAssertFalse(cut.contains(WeightNames.inputNorm(layer: 3)))
        assertPinned("cut.skipping", Double(try skippingError(source: source, cut: out, dropped: [1, 3, 4])), within: Tolerance.exact, "cut = full model skipping [1, 3, 4]")
    }

    func testShardedUntiedF16CutStaysShardedWithTheLMHead() throws {
        let source = scratch.appendingPathComponent("sharded")
        try LlamaModel.random(config: config(tied: false), seed: 4).save(to: source, dtype: .F16, maxShardBytes: 12_000)
        let src = try CheckpointTensors(directory: source)
        XCTAssertTrue(src.isSharded)
        let largestSource = src.files.map { $0.entries.reduce(0) { $0 + $1.end - $1.begin } }.max()!

        let out = scratch.appendingPathComponent("sharded-cut")
        let report = try LayerCutter(model: source).cut(dropping: try LayerSelection(parsing: "2-3"), to: out)
        let cut = try CheckpointTensors(directory: out)
        XCTAssertTrue(cut.isSharded)
        XCTAssertGreaterThan(cut.files.count, 1)
        XCTAssertEqual(try dtypes(out), [.F16])
        XCTAssertTrue(cut.contains(WeightNames.lmHead), "an untied lm_head stays")
        for file in cut.files {
            XCTAssertLessThanOrEqual(file.entries.reduce(0) { $0 + $1.end - $1.begin }, largestSource, file.url.lastPathComponent)
        }
        // The index names exactly the files written, with HF's numbering, and the right total size.
        let index = try ConfigJSON.read(out.appendingPathComponent("model.safetensors.index.json"))
        let weightMap = try XCTUnwrap(index["weight_map"] as? [String: String])
        XCTAssertEqual(Set(weightMap.keys), Set(cut.names))
        let files = Set(weightMap.values)
        XCTAssertEqual(files, Set(report.weightFiles.filter { $0.hasSuffix(".safetensors") }))
        XCTAssertTrue(files.contains(String(format: "model-00001-of-%05d.safetensors", files.count)))
        let totalSize = ((index["metadata"] as? [String: Any])?["total_size"] as? NSNumber)?.intValue
        XCTAssertEqual(totalSize, cut.files.reduce(0) { $0 + $1.entries.reduce(0) { $0 + $1.end - $1.begin } })
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path))

        assertPinned("cut.skipping", Double(try skippingError(source: source, cut: out, dropped: [2, 3])), within: Tolerance.exact, "cut = full model skipping [2, 3]")
        XCTAssertNotNil(try LlamaModel.load(directory: out).untiedLMHead)
    }

    func testDtypeConversionOnRequest() throws {
        let source = scratch.appendingPathComponent("bf16")
        try LlamaModel.random(config: config(tied: true), seed: 5).save(to: source, dtype: .BF16)
        let out = scratch.appendingPathComponent("f32-cut")
        let report = try LayerCutter(model: source).cut(dropping: LayerSelection([0]), to: out, dtype: .F32)
        XCTAssertEqual(try dtypes(out), [.F32])
        XCTAssertEqual(report.dtypes, ["F32"])
        XCTAssertTrue(report.configKeysEdited.contains("torch_dtype"))
        XCTAssertEqual(try ConfigJSON.read(out.appendingPathComponent("config.json"))["torch_dtype"] as? String, "float32")
        // bf16 → f32 is exact, so the cut computes exactly what the bf16 source computes.
        assertPinned("cut.skipping", Double(try skippingError(source: source, cut: out, dropped: [0])), within: Tolerance.exact, "cut = full model skipping [0]")

        let half = scratch.appendingPathComponent("f16-cut")
        _ = try LayerCutter(model: source).cut(dropping: LayerSelection([0]), to: half, dtype: .F16)
        XCTAssertEqual(try dtypes(half), [.F16])
        XCTAssertEqual(try ConfigJSON.read(half.appendingPathComponent("config.json"))["torch_dtype"] as? String, "float16")
    }

    func testUnknownConfigKeysPerLayerListsMetadataAndCompanionFiles() throws {
        let source = scratch.appendingPathComponent("extras")
        try LlamaModel.random(config: config(tied: true), seed: 6).save(to: source)
        // Metadata beyond "format", as some exporters write it.
        let weights = source.appendingPathComponent("model.safetensors")
        let file = try SafetensorsFile(url: weights)
        let items = try file.entries.map { SafetensorsItem(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: try file.rawBytes($0.name)) }
        try SafetensorsWriter.write(items, metadata: ["format": "pt", "producer": "test"], to: weights)
        // Keys transformers knows for other architectures, and one nobody knows.
        var config = try ConfigJSON.read(source.appendingPathComponent("config.json"))
        config["layer_types"] = (0..<6).map { $0 % 2 == 0 ? "full_attention" : "sliding_attention" }
        config["mlp_only_layers"] = [1, 4]
        config["my_custom_setting"] = ["nested": [1, 2, 3], "flag": true]
        try JSONSerialization.data(withJSONObject: config).write(to: source.appendingPathComponent("config.json"))
        for name in ["generation_config.json", "chat_template.jinja", "README.md", "pytorch_model.bin"] {
            try Data("\(name)\n".utf8).write(to: source.appendingPathComponent(name))
        }
        // A tokenizer.json must parse (CheckpointValidation); its bytes are copied as they are.
        try Data(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "note": "tokenizer.json"}"#.utf8)
            .write(to: source.appendingPathComponent("tokenizer.json"))
        try FileManager.default.createDirectory(at: source.appendingPathComponent("original"), withIntermediateDirectories: true)
        try Data("x".utf8).write(to: source.appendingPathComponent("original/consolidated.00.pth"))

        let out = scratch.appendingPathComponent("extras-cut")
        let report = try LayerCutter(model: source).cut(dropping: try LayerSelection(parsing: "1-2"), to: out)
        let edited = try ConfigJSON.read(out.appendingPathComponent("config.json"))
        XCTAssertEqual(edited["layer_types"] as? [String], ["full_attention", "sliding_attention", "full_attention", "sliding_attention"])
        XCTAssertEqual((edited["mlp_only_layers"] as? [NSNumber])?.map(\.intValue), [2], "layer 4 is now layer 2; layer 1 is gone")
        let custom = try XCTUnwrap(edited["my_custom_setting"] as? [String: Any])
        XCTAssertEqual((custom["nested"] as? [NSNumber])?.map(\.intValue), [1, 2, 3])
        XCTAssertEqual(report.configKeysEdited, ["layer_types", "mlp_only_layers", "num_hidden_layers"])

        XCTAssertEqual(try SafetensorsFile(url: out.appendingPathComponent("model.safetensors")).metadata,
                       ["format": "pt", "producer": "test"])
        XCTAssertEqual(report.copiedFiles, ["chat_template.jinja", "generation_config.json", "tokenizer.json"])
        // The source's README.md lives on inside the cut's model card, below what the cut did.
        let card = try String(contentsOf: out.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(card.hasSuffix("## The source model's card\n\nREADME.md\n"), card)
        XCTAssertEqual(report.leftBehind, ["original", "pytorch_model.bin"])
        for name in report.copiedFiles {
            XCTAssertEqual(FileManager.default.contents(atPath: out.appendingPathComponent(name).path),
                           FileManager.default.contents(atPath: source.appendingPathComponent(name).path), name)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("original").path))
        assertPinned("cut.skipping", Double(try skippingError(source: source, cut: out, dropped: [1, 2])), within: Tolerance.exact, "cut = full model skipping [1, 2]")
    }

    func testParameterCountsAndReportText() throws {
        let source = scratch.appendingPathComponent("count")
        let model = LlamaModel.random(config: config(tied: false), seed: 7)
        try model.save(to: source)
        let report = try LayerCutter(model: source).cut(dropping: try LayerSelection(parsing: "0,5"), to: scratch.appendingPathComponent("o"))
        XCTAssertEqual(report.parametersBefore, model.parameterCount)
        let perLayer = (model.parameterCount - 2 * 80 * 32 - 32) / 6
        XCTAssertEqual(report.parametersAfter, model.parameterCount - 2 * perLayer)
        XCTAssertTrue(report.text.contains("dropped (0-based, inclusive): 0,5"), report.text)
        XCTAssertTrue(report.text.contains("kept:                         1-4"), report.text)
        XCTAssertTrue(report.mergekitYAML.contains("layer_range: [1, 5]"), report.mergekitYAML)
    }
}
