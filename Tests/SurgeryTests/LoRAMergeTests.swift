// prune merge: the merged checkpoint computes what the base computes with the adapter attached, keeps the
// base's layout (dtype, shards, tying, config keys, companion files) with every unadapted tensor
// bit-exact, refuses adapters that do not fit, and (when the dev venv is there) transformers loads it
// with the logits of PEFT's merge_and_unload.
import Checkpoint
import Foundation
import Llama
import Support
import Surgery
import Tensor
import TestSupport
import XCTest

final class LoRAMergeTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("lora-merge") }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    static var stories: URL { Fixtures.stories260K }

    func requireShared() throws -> Reference {
        return try Reference()
    }

    /// The reference's lora.init (r=4, alpha=8, all seven projections of every layer) as an adapter directory.
    func referenceAdapter(_ ref: Reference) throws -> URL {
        let L = try LlamaConfig.load(ref.modelDirectory.appendingPathComponent("config.json")).numHiddenLayers
        let dir = scratch.appendingPathComponent("ref-adapter")
        try ref.loraInitAdapter(layers: L).write(to: dir)
        return dir
    }

    /// A seeded random adapter for `model` on `targets` of `layers`, B not zero (so the merge changes the weights).
    func randomAdapter(for model: URL, targets: [Projection], layers: [Int]?, rank: Int = 3, alpha: Float = 5,
                       rslora: Bool = false, name: String = "adapter") throws -> URL {
        let config = try LlamaConfig.load(model.appendingPathComponent("config.json"))
        var rng = SeededGenerator(seed: UInt64(rank * 31 + targets.count))
        func random(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -0.5...0.5, using: &rng) })
        }
        var weights: [LoRAWeights] = []
        for layer in layers ?? Array(0..<config.numHiddenLayers) {
            for p in targets {
                let (out, inp) = PEFTAdapter.shape(p, config)
                weights.append(LoRAWeights(layer: layer, projection: p, a: random([rank, inp]), b: random([out, rank])))
            }
        }
        let dir = scratch.appendingPathComponent(name)
        try PEFTAdapter(config: PEFTAdapterConfig(rank: rank, alpha: alpha, targets: targets, layers: layers, useRSLoRA: rslora),
                        weights: weights).write(to: dir)
        return dir
    }

    /// `model` loaded with the adapter at `adapter` attached (LoRAAdapter's alpha chosen to give the adapter's scale).
    func modelWithAdapter(_ model: URL, _ adapter: URL) throws -> LlamaModel {
        let m = try LlamaModel.load(directory: model)
        let peft = try PEFTAdapter.read(adapter)
        for w in peft.weights {
            m.layers[w.layer].linear(w.projection).lora = LoRAAdapter(a: w.a, b: w.b, alpha: peft.config.scale * Float(peft.config.rank))
        }
        return m
    }

    func logits(_ model: LlamaModel, _ rows: [[Int32]]) -> Tensor {
        model.forward(tokens: rows.flatMap { $0 }, batch: rows.count, length: rows[0].count).logits
    }

    func bytes(_ store: CheckpointTensors, _ name: String) throws -> [UInt8] {
        let e = try store.entry(name)
        return Array(try e.file.rawBytes(name))
    }

    func testMergedStories260KComputesTheBaseWithTheReferenceAdapter() throws {
        let ref = try requireShared()
        let adapter = try referenceAdapter(ref)
        let out = scratch.appendingPathComponent("merged")
        let report = try LoRAMerger(model: ref.modelDirectory, adapter: adapter).merge(to: out)
        XCTAssertEqual(report.mergedTensors, 5 * 7)
        XCTAssertEqual(report.dtypes, ["F32"])
        XCTAssertEqual(report.configKeysEdited, [])

        let rows = ref.idRows("input_ids")
        let expected = logits(try modelWithAdapter(ref.modelDirectory, adapter), rows)
        let got = logits(try LlamaModel.load(directory: out), rows)
        let error = got.maxAbsDifference(expected)
        // Float32 rounding of W + scale·B·A.
        assertPinned("merge.f32", Double(error), within: Tolerance.mergedF32Logits, "stories260K merged vs base + attached adapter")
        XCTAssertGreaterThan(got.maxAbsDifference(logits(try LlamaModel.load(directory: ref.modelDirectory), rows)), 1e-3)

        // config.json byte for byte, tokenizer files copied, unadapted tensors bit-exact.
        XCTAssertEqual(try ConfigJSON.data(try ConfigJSON.read(out.appendingPathComponent("config.json"))),
                       try ConfigJSON.data(try ConfigJSON.read(ref.modelDirectory.appendingPathComponent("config.json"))))
        XCTAssertTrue(report.copiedFiles.contains("tokenizer.model"))
        let base = try CheckpointTensors(directory: ref.modelDirectory), merged = try CheckpointTensors(directory: out)
        XCTAssertEqual(base.names, merged.names)
        for name in base.names where !name.hasSuffix("_proj.weight") {
            XCTAssertEqual(try bytes(base, name), try bytes(merged, name), name)
        }
    }

    func testMergeIntoTransformersBF16CheckpointKeepsDtypeTyingAndUnadaptedBytes() throws {
        let source = Fixtures.projectRoot.appendingPathComponent("Tests/Fixtures/checkpoints/tied-bf16")
        let adapter = try randomAdapter(for: source, targets: [.q, .v, .down], layers: [0, 2])
        let out = scratch.appendingPathComponent("merged-bf16")
        let report = try LoRAMerger(model: source, adapter: adapter).merge(to: out)
        XCTAssertEqual(report.dtypes, ["BF16"])
        XCTAssertEqual(report.layers, [0, 2])
        let base = try CheckpointTensors(directory: source), merged = try CheckpointTensors(directory: out)
        XCTAssertFalse(merged.contains(WeightNames.lmHead))
        XCTAssertEqual(base.names, merged.names)
        let peft = try PEFTAdapter.read(adapter)
        for name in base.names {
            guard let (layer, _) = WeightNames.splitLayer(name),
                  let w = Projection.allCases.compactMap({ p in WeightNames.projection(p, layer: layer) == name ? peft.weights(layer: layer, projection: p) : nil }).first else {
                XCTAssertEqual(try bytes(base, name), try bytes(merged, name), name)
                continue
            }
            // W + scale·B·A rounded once to bf16: within half a bf16 step of the float32 sum.
            let exact = try base.tensor(name)
            let (O, I, R) = (w.b.shape[0], w.a.shape[1], w.a.shape[0])
            for o in 0..<O { for i in 0..<I { for r in 0..<R { exact.data[o * I + i] += peft.config.scale * w.b.data[o * R + r] * w.a.data[r * I + i] } } }
            let got = try merged.tensor(name)
            // One assertion per tensor, not per element: a wrong merge would otherwise log every weight.
            let outside = (0..<got.count).filter { abs(got.data[$0] - exact.data[$0]) > abs(exact.data[$0]) / 256 + 1e-30 }
            XCTAssertEqual(outside.count, 0, "\(name): \(outside.count) of \(got.count) weights off by more than bf16 rounding, the first at \(outside.first ?? -1)")
            XCTAssertTrue(try bytes(base, name) != bytes(merged, name), "\(name) unchanged by the merge")
        }
        let rows: [[Int32]] = [[1, 7, 30, 5, 61, 2, 9, 44], [1, 3, 3, 80, 12, 50, 6, 19]]
        let error = logits(try LlamaModel.load(directory: out), rows).maxAbsDifference(logits(try modelWithAdapter(source, adapter), rows))
        assertPinned("merge.bf16", Double(error), within: Tolerance.mergedBF16Logits, "bf16 rounding of the merged weights")

        // --dtype f32: the same values before rounding.
        let f32 = scratch.appendingPathComponent("merged-f32")
        let r32 = try LoRAMerger(model: source, adapter: adapter).merge(to: f32, dtype: .F32)
        XCTAssertEqual(r32.dtypes, ["F32"])
        XCTAssertEqual(r32.configKeysEdited, ["dtype"])
        XCTAssertEqual(try ConfigJSON.read(f32.appendingPathComponent("config.json"))["dtype"] as? String, "float32")
        let error32 = logits(try LlamaModel.load(directory: f32), rows).maxAbsDifference(logits(try modelWithAdapter(source, adapter), rows))
        assertPinned("merge.f32", Double(error32), within: Tolerance.mergedIntoF32Logits, "bf16 base merged into f32")
    }

    func testMergeIntoShardedUntiedF16CheckpointStaysShardedWithRSLoRAScale() throws {
        let source = Fixtures.projectRoot.appendingPathComponent("Tests/Fixtures/checkpoints/untied-f16-sharded")
        let adapter = try randomAdapter(for: source, targets: Projection.allCases, layers: nil, rank: 4, alpha: 6, rslora: true)
        let out = scratch.appendingPathComponent("merged-sharded")
        let report = try LoRAMerger(model: source, adapter: adapter).merge(to: out)
        XCTAssertEqual(report.scale, 3, accuracy: 1e-6)
        let base = try CheckpointTensors(directory: source), merged = try CheckpointTensors(directory: out)
        XCTAssertTrue(merged.isSharded)
        XCTAssertEqual(Set(merged.files.map { $0.url.lastPathComponent }), Set(base.files.map { $0.url.lastPathComponent }))
        XCTAssertEqual(report.dtypes, ["F16"])
        XCTAssertTrue(merged.contains(WeightNames.lmHead))
        for name in [WeightNames.lmHead, WeightNames.embedding, WeightNames.finalNorm, WeightNames.inputNorm(layer: 1)] {
            XCTAssertEqual(try bytes(base, name), try bytes(merged, name), name)
        }
        let index = try ConfigJSON.read(out.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertEqual(Set((index["weight_map"] as? [String: String])?.keys.map { $0 } ?? []), Set(base.names))
        XCTAssertEqual(Set(try ConfigJSON.read(out.appendingPathComponent("config.json")).keys),
                       Set(try ConfigJSON.read(source.appendingPathComponent("config.json")).keys))
        XCTAssertTrue(report.copiedFiles.contains("generation_config.json"))
        let rows: [[Int32]] = [[1, 7, 30, 5, 61, 2, 9, 44]]
        let error = logits(try LlamaModel.load(directory: out), rows).maxAbsDifference(logits(try modelWithAdapter(source, adapter), rows))
        assertPinned("merge.f16", Double(error), within: Tolerance.mergedF16Logits, "f16 rounding of the merged weights")
    }

    func refusal(_ body: () throws -> Void) -> String {
        do { try body() } catch let e as PruneError {
            XCTAssertFalse(e.description.contains("\n"))
            return e.description
        } catch { XCTFail("\(error)") }
        XCTFail("no refusal")
        return ""
    }

    func testAdaptersThatDoNotFitAndBadOutputsAreRefusedBeforeAnythingIsWritten() throws {
        let source = Fixtures.projectRoot.appendingPathComponent("Tests/Fixtures/checkpoints/untied-f16-sharded")
        let other = scratch.appendingPathComponent("narrow")
        try LlamaModel.random(config: LlamaConfig(hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 3, numAttentionHeads: 4,
                                                  numKeyValueHeads: 2, vocabSize: 96), seed: 2).save(to: other)
        let out = scratch.appendingPathComponent("out")
        // An adapter for another shape.
        let foreign = try randomAdapter(for: other, targets: [.q], layers: nil, name: "foreign")
        XCTAssertTrue(refusal { _ = try LoRAMerger(model: source, adapter: foreign).merge(to: out) }.contains("has shape"))
        // An adapter for a model with more layers (trained before a cut).
        let cut = scratch.appendingPathComponent("cut")
        _ = try LayerCutter(model: source).cut(dropping: try LayerSelection(parsing: "1"), to: cut)
        let full = try randomAdapter(for: source, targets: [.q, .k], layers: nil, name: "full")
        let message = refusal { _ = try LoRAMerger(model: cut, adapter: full).merge(to: out) }
        XCTAssertTrue(message.contains("is for layer 2 but the model has 2 layers"), message)
        // Missing files.
        XCTAssertTrue(refusal { _ = try LoRAMerger(model: source, adapter: scratch.appendingPathComponent("none")).merge(to: out) }
            .contains("adapter directory not found"))
        let noWeights = scratch.appendingPathComponent("no-weights")
        try FileManager.default.createDirectory(at: noWeights, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: full.appendingPathComponent("adapter_config.json"), to: noWeights.appendingPathComponent("adapter_config.json"))
        XCTAssertTrue(refusal { _ = try LoRAMerger(model: source, adapter: noWeights).merge(to: out) }.contains("adapter_model.safetensors: file not found"))
        XCTAssertTrue(refusal { _ = try LoRAMerger(model: scratch.appendingPathComponent("nomodel"), adapter: full).merge(to: out) }
            .contains("model directory not found"))
        // Outputs that exist or would overwrite an input.
        let busy = scratch.appendingPathComponent("busy")
        try FileManager.default.createDirectory(at: busy, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: busy.appendingPathComponent("keep.txt"))
        XCTAssertTrue(refusal { _ = try LoRAMerger(model: source, adapter: full).merge(to: busy) }.contains("already exists and is not empty"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: busy.appendingPathComponent("keep.txt").path))
        XCTAssertTrue(refusal { _ = try LoRAMerger(model: source, adapter: full).merge(to: full) }.contains("is the adapter directory itself"))
        XCTAssertTrue(refusal { _ = try LoRAMerger(model: source, adapter: full).merge(to: source.appendingPathComponent("m")) }
            .contains("is inside the model directory"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing written by a refused merge")
        // With --force an existing OUT is replaced.
        _ = try LoRAMerger(model: source, adapter: full).merge(to: busy, force: true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: busy.appendingPathComponent("keep.txt").path))
    }

    /// transformers loads our merged checkpoint and computes the logits of PEFT's merge_and_unload on the same adapter.
    func testTransformersLoadsTheMergedModelWithPEFTsMergedLogits() throws {
        let ref = try requireShared()
        guard let python = PythonVenv.python else { throw XCTSkip("no Python with torch, transformers and peft (~/.cache/prune-dev/venv)") }
        var results: [String] = []
        let bf16 = Fixtures.projectRoot.appendingPathComponent("Tests/Fixtures/checkpoints/tied-bf16")
        let sharded = Fixtures.projectRoot.appendingPathComponent("Tests/Fixtures/checkpoints/untied-f16-sharded")
        let cases: [(URL, URL, Double)] = [
            // Measured 0 in each: the same float32 merge, rounded once to bf16/f16 as PEFT rounds it.
            (ref.modelDirectory, try referenceAdapter(ref), Tolerance.mergedAgainstPEFT),
            (bf16, try randomAdapter(for: bf16, targets: [.q, .v, .down], layers: [0, 2], name: "bf16-adapter"), Tolerance.mergedAgainstPEFT),
            (sharded, try randomAdapter(for: sharded, targets: Projection.allCases, layers: nil, rank: 4, alpha: 6, rslora: true, name: "f16-adapter"),
             Tolerance.mergedAgainstPEFT),
        ]
        for (i, (model, adapter, tolerance)) in cases.enumerated() {
            let out = scratch.appendingPathComponent("merged-\(i)")
            _ = try LoRAMerger(model: model, adapter: adapter).merge(to: out)
            let line = try PythonVenv.run(python, script: Self.compareScript, [model.path, adapter.path, out.path])
            results.append("\(model.lastPathComponent): \(line.trimmingCharacters(in: .whitespacesAndNewlines))")
            let logitError = Double(line.split(separator: " ").first { $0.hasPrefix("logits=") }?.dropFirst(7) ?? "") ?? .infinity
            assertPinned("merge.peft", logitError, within: tolerance, results.last!)
        }
        print("transformers on our merge vs PEFT merge_and_unload:\n  " + results.joined(separator: "\n  "))
    }

    /// argv: base, adapter, our merged directory. Prints the max |Δ| of logits (both in float32) and of the
    /// merged weights in the base dtype, and how many weight elements differ.
    static let compareScript = """
    import sys, torch
    from transformers import LlamaForCausalLM
    from peft import PeftModel
    torch.set_num_threads(2)
    base, adapter, ours_dir = sys.argv[1:4]
    peft_merged = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base), adapter).merge_and_unload()
    ours = LlamaForCausalLM.from_pretrained(ours_dir)
    assert ours.dtype == peft_merged.dtype, (ours.dtype, peft_merged.dtype)
    theirs_sd, ours_sd = peft_merged.state_dict(), ours.state_dict()
    assert set(theirs_sd) == set(ours_sd), set(theirs_sd) ^ set(ours_sd)
    wmax = max((theirs_sd[k].float() - ours_sd[k].float()).abs().max().item() for k in theirs_sd)
    wdiff = sum((theirs_sd[k] != ours_sd[k]).sum().item() for k in theirs_sd)
    total = sum(v.numel() for v in theirs_sd.values())
    ids = torch.tensor([[1, 7, 30, 5, 61, 2, 9, 44, 17, 3, 88, 20], [1, 3, 3, 80, 12, 50, 6, 19, 33, 71, 4, 9]])
    with torch.no_grad():
        a = peft_merged.float()(input_ids=ids).logits
        b = ours.float()(input_ids=ids).logits
    print(f"logits={(a - b).abs().max().item():.3g} weights={wmax:.3g} ({ours.dtype}; {wdiff} of {total} elements differ)")
    """
}
