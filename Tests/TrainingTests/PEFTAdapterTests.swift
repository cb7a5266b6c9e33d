// PEFT adapter directories: written as PEFT 0.21 writes them, read back bit-exact, attached to a model so
// that it computes what the reference's LoRA model computes, refused with one line when they hold what we
// do not implement or do not fit the model, and (when the dev venv is there) loaded by PEFT itself with
// the same logits as ours.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor
import TestSupport
import Training
import XCTest

final class PEFTAdapterTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("peft-adapter") }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    /// The stories260K reference, or a skip saying why it is absent.
    static func reference() throws -> Reference {
        return try Reference()
    }

    /// The keys PEFT 0.21.2's save_pretrained writes into adapter_config.json for a LoraConfig.
    static let peftConfigKeys: Set<String> = [
        "alora_invocation_tokens", "alpha_pattern", "arrow_config", "auto_mapping", "base_model_name_or_path", "bias",
        "corda_config", "ensure_weight_tying", "eva_config", "exclude_modules", "fan_in_fan_out", "inference_mode",
        "init_lora_weights", "kasa_config", "layer_replication", "layers_pattern", "layers_to_transform", "loftq_config",
        "lora_alpha", "lora_bias", "lora_dropout", "lora_ga_config", "megatron_config", "megatron_core", "modules_to_save",
        "monteclora_config", "peft_type", "peft_version", "qalora_group_size", "r", "rank_pattern", "revision",
        "target_modules", "target_parameters", "task_type", "trainable_token_indices", "use_bdlora", "use_dora",
        "use_qalora", "use_rslora", "velora_config",
    ]

    func smallModel(seed: UInt64 = 1) -> LlamaModel {
        LlamaModel.random(config: LlamaConfig(hiddenSize: 24, intermediateSize: 40, numHiddenLayers: 4, numAttentionHeads: 4,
                                              numKeyValueHeads: 2, vocabSize: 50, maxPositionEmbeddings: 32), seed: seed)
    }

    /// A seeded random tensor.
    func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        return Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &rng) })
    }

    func testCollectedAdapterRoundTripsBitExactWithPEFTsConfigKeys() throws {
        let model = smallModel()
        // q and down of layers 1 and 3: layers_to_transform must be written.
        for layer in [1, 3] {
            for p in [Projection.q, .down] {
                let linear = model.layers[layer].linear(p)
                linear.lora = LoRAAdapter(a: random([3, linear.inFeatures], seed: UInt64(layer * 10 + 1)),
                                          b: random([linear.outFeatures, 3], seed: UInt64(layer * 10 + 2)), alpha: 6)
            }
        }
        let adapter = try PEFTAdapter(collecting: model, dropout: 0.05, baseModel: "some/base")
        XCTAssertEqual(adapter.config, PEFTAdapterConfig(rank: 3, alpha: 6, dropout: 0.05, targets: [.q, .down], layers: [1, 3],
                                                         baseModel: "some/base"))
        let dir = scratch.appendingPathComponent("adapter")
        try adapter.write(to: dir)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)), ["adapter_config.json", "adapter_model.safetensors"])

        let json = try ConfigJSON.read(dir.appendingPathComponent("adapter_config.json"))
        XCTAssertEqual(Set(json.keys), Self.peftConfigKeys)
        XCTAssertEqual(json["peft_type"] as? String, "LORA")
        XCTAssertEqual(json["task_type"] as? String, "CAUSAL_LM")
        XCTAssertEqual(json["bias"] as? String, "none")
        XCTAssertEqual(json["r"] as? Int, 3)
        XCTAssertEqual(json["lora_alpha"] as? Int, 6)
        XCTAssertEqual(json["target_modules"] as? [String], ["q_proj", "down_proj"])
        XCTAssertEqual(json["layers_to_transform"] as? [Int], [1, 3])
        XCTAssertEqual((json["use_rslora"] as? NSNumber)?.boolValue, false)
        let text = try String(contentsOf: dir.appendingPathComponent("adapter_config.json"), encoding: .utf8)
        XCTAssertTrue(text.contains("\"use_dora\": false") && text.contains("\"lora_dropout\": 0.05") && text.contains("\"revision\": null"), text)

        let names = try SafetensorsFile(url: dir.appendingPathComponent("adapter_model.safetensors")).names
        XCTAssertEqual(Set(names), Set([1, 3].flatMap { l in [Projection.q, .down].flatMap { p in
            [true, false].map { WeightNames.peftLoRA(p, layer: l, isA: $0) } } }))
        XCTAssertTrue(names.contains("base_model.model.model.layers.3.mlp.down_proj.lora_B.weight"))

        let back = try PEFTAdapter.read(dir)
        XCTAssertEqual(back.config, adapter.config)
        XCTAssertEqual(back.weights.count, 4)
        for (x, y) in zip(adapter.weights, back.weights) {
            XCTAssertEqual([x.layer, x.a.shape[0]], [y.layer, y.a.shape[0]])
            XCTAssertEqual(x.projection, y.projection)
            assertEqualElements(x.a.array, y.a.array, "A")
            assertEqualElements(x.b.array, y.b.array, "B")
        }
        // Attached to a fresh model of the same shape it computes what the original computes.
        let other = smallModel()
        try back.attach(to: other, directory: dir)
        XCTAssertNil(other.layers[0].q.lora)
        let tokens: [Int32] = [1, 4, 9, 16, 25, 36, 49, 2]
        assertEqualElements(other.forward(tokens: tokens, batch: 1, length: 8).logits.array,
                       model.forward(tokens: tokens, batch: 1, length: 8).logits.array)
    }

    func testRSLoRAScalesByTheSquareRootOfTheRank() throws {
        let model = smallModel()
        var weights: [LoRAWeights] = []
        for layer in 0..<4 {
            let q = model.layers[layer].q
            weights.append(LoRAWeights(layer: layer, projection: .q, a: random([4, q.inFeatures], seed: UInt64(layer)),
                                       b: random([q.outFeatures, 4], seed: UInt64(layer + 9))))
        }
        let adapter = PEFTAdapter(config: PEFTAdapterConfig(rank: 4, alpha: 8, targets: [.q], useRSLoRA: true), weights: weights)
        XCTAssertEqual(adapter.config.scale, 4)
        try adapter.attach(to: model, directory: scratch)
        XCTAssertEqual(model.layers[2].q.lora?.scale ?? 0, 4, accuracy: 1e-6)
        let back = try PEFTAdapter(collecting: model, useRSLoRA: true)
        XCTAssertEqual(back.config.alpha, 8, accuracy: 1e-5)
        XCTAssertTrue(back.config.useRSLoRA)
        XCTAssertNil(back.config.layers)
    }

    func testReferenceLoRAInitWrittenAsAnAdapterLoadsWithPEFTNamesAndComputesTheLoRAModel() throws {
        let ref = try Self.reference()
        let base = try LlamaModel.load(directory: ref.modelDirectory)
        let L = base.layers.count
        let dir = scratch.appendingPathComponent("ref-adapter")
        try ref.loraInitAdapter(layers: L).write(to: dir)

        // Exactly the reference's lora.init names and shapes.
        let file = try SafetensorsFile(url: dir.appendingPathComponent("adapter_model.safetensors"))
        let expected = ref.tensors.entries.filter { $0.name.hasPrefix("lora.init.") }
        XCTAssertEqual(Set(file.names), Set(expected.map { String($0.name.dropFirst("lora.init.".count)) }))
        for e in expected { XCTAssertEqual(file.entryByName[String(e.name.dropFirst("lora.init.".count))]?.shape, e.shape, e.name) }
        XCTAssertEqual(file.names.count, 2 * 7 * L)

        let adapter = try PEFTAdapter.read(dir)
        XCTAssertNil(adapter.config.layers)
        XCTAssertEqual(adapter.config.targets, Projection.allCases)
        try adapter.attach(to: base, directory: dir)

        // The same model built the way the gradient tests build it.
        let (lora, _) = try ReferenceGradientTests.loraModel(ref)
        let rows = ref.idRows("input_ids")
        let tokens = rows.flatMap { $0 }
        let ours = base.forward(tokens: tokens, batch: rows.count, length: rows[0].count).logits
        let theirs = lora.forward(tokens: tokens, batch: rows.count, length: rows[0].count).logits
        assertEqualElements(ours.array, theirs.array)
        XCTAssertGreaterThan(ours.maxAbsDifference(try LlamaModel.load(directory: ref.modelDirectory)
            .forward(tokens: tokens, batch: rows.count, length: rows[0].count).logits), 1e-3, "the adapter changes the logits")
    }

    /// Writes a valid one-layer-set adapter, lets `edit` change its config, and returns the refusal.
    func refusal(config edit: (inout [String: Any]) -> Void = { _ in }, tensors: ((inout [SafetensorsItem]) -> Void)? = nil,
                 model: LlamaConfig? = nil) throws -> String {
        let m = smallModel()
        var weights: [LoRAWeights] = []
        for layer in 0..<4 {
            for p in [Projection.q, .v] {
                let l = m.layers[layer].linear(p)
                weights.append(LoRAWeights(layer: layer, projection: p, a: random([2, l.inFeatures], seed: 1), b: random([l.outFeatures, 2], seed: 2)))
            }
        }
        let dir = scratch.appendingPathComponent("refused-\(UUID().uuidString)")
        try PEFTAdapter(config: PEFTAdapterConfig(rank: 2, alpha: 4, targets: [.q, .v]), weights: weights).write(to: dir)
        var json = try ConfigJSON.read(dir.appendingPathComponent("adapter_config.json"))
        edit(&json)
        try ConfigJSON.data(json).write(to: dir.appendingPathComponent("adapter_config.json"))
        if let tensors {
            let file = try SafetensorsFile(url: dir.appendingPathComponent("adapter_model.safetensors"))
            var items = try file.names.map { SafetensorsItem(name: $0, tensor: try file.tensor($0)) }
            tensors(&items)
            try SafetensorsWriter.write(items, to: dir.appendingPathComponent("adapter_model.safetensors"))
        }
        do {
            let adapter = try PEFTAdapter.read(dir)
            try adapter.validate(against: model ?? m.config, directory: dir)
        } catch let error as PruneError {
            XCTAssertFalse(error.description.contains("\n"))
            return error.description
        }
        XCTFail("no refusal")
        return ""
    }

    func testUnsupportedAdaptersAreRefusedNamingFileAndKey() throws {
        XCTAssertTrue(try refusal { $0["use_dora"] = true }.contains("adapter_config.json: DoRA"))
        XCTAssertTrue(try refusal { $0["modules_to_save"] = ["lm_head"] }.contains("modules_to_save"))
        XCTAssertTrue(try refusal { $0["bias"] = "lora_only" }.contains("bias \"lora_only\""))
        XCTAssertTrue(try refusal { $0["fan_in_fan_out"] = true }.contains("fan_in_fan_out"))
        XCTAssertTrue(try refusal { $0["target_modules"] = ["q_proj", "c_attn"] }.contains("\"c_attn\""))
        XCTAssertTrue(try refusal { $0["target_modules"] = ".*attn.*" }.contains("regular expression"))
        XCTAssertTrue(try refusal { $0["rank_pattern"] = ["q_proj": 8] }.contains("rank_pattern"))
        XCTAssertTrue(try refusal { $0["alpha_pattern"] = ["q_proj": 8] }.contains("alpha_pattern"))
        XCTAssertTrue(try refusal { $0["peft_type"] = "IA3" }.contains("only LORA"))
        // A tensor the config does not describe, one for a module we do not adapt.
        XCTAssertTrue(try refusal(tensors: { $0.append(SafetensorsItem(name: "base_model.model.lm_head.lora_A.weight", tensor: Tensor(zeros: [2, 24]))) })
            .contains("\"base_model.model.lm_head.lora_A.weight\""))
        // A layer the model does not have: an adapter trained on the 4-layer model, applied to a 3-layer cut.
        var cut = smallModel().config
        cut.numHiddenLayers = 3
        let message = try refusal(model: cut)
        XCTAssertTrue(message.contains("adapter_model.safetensors: tensor \"base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight\" is for layer 3"), message)
        // A model with more layers: the adapter lacks layer 4's matrices.
        var deeper = smallModel().config
        deeper.numHiddenLayers = 5
        XCTAssertTrue(try refusal(model: deeper).contains("layers.4.self_attn.q_proj.lora_A.weight\" is missing"))
        // Another width.
        var wider = smallModel().config
        wider.hiddenSize = 32
        XCTAssertTrue(try refusal(model: wider).contains("has shape"))
        // Missing files.
        let empty = scratch.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try PEFTAdapter.read(empty)) { XCTAssertTrue("\($0)".contains("adapter_config.json: file not found"), "\($0)") }
        XCTAssertThrowsError(try PEFTAdapter.read(scratch.appendingPathComponent("nowhere"))) { XCTAssertTrue("\($0)".contains("adapter directory not found")) }
    }

    func testNamesWithTheAdapterNameAreRead() throws {
        let model = smallModel()
        let q = model.layers[0].q
        let a = random([2, q.inFeatures], seed: 3), b = random([q.outFeatures, 2], seed: 4)
        let dir = scratch.appendingPathComponent("default-names")
        try PEFTAdapter(config: PEFTAdapterConfig(rank: 2, alpha: 2, targets: [.q], layers: [0]),
                        weights: [LoRAWeights(layer: 0, projection: .q, a: a, b: b)]).write(to: dir)
        try SafetensorsWriter.write([SafetensorsItem(name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight", tensor: a),
                                     SafetensorsItem(name: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight", tensor: b)],
                                    to: dir.appendingPathComponent("adapter_model.safetensors"))
        let back = try PEFTAdapter.read(dir)
        XCTAssertEqual(back.weights.count, 1)
        assertEqualElements(back.weights.first?.a.array ?? [], a.array, "A")
        assertEqualElements(back.weights.first?.b.array ?? [], b.array, "B")
    }

    /// PEFT loads our adapter onto transformers' model and computes our logits.
    func testPEFTLoadsOurAdapterWithOurLogits() throws {
        let ref = try Self.reference()
        guard let python = PythonVenv.python else { throw XCTSkip("no Python with torch, transformers and peft (~/.cache/prune-dev/venv)") }
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        let dir = scratch.appendingPathComponent("for-peft")
        try ref.loraInitAdapter(layers: model.layers.count).write(to: dir)
        try PEFTAdapter.read(dir).attach(to: model, directory: dir)
        let rows = ref.idRows("input_ids")
        let ours = model.forward(tokens: rows.flatMap { $0 }, batch: rows.count, length: rows[0].count).logits
        let out = scratch.appendingPathComponent("peft-logits.safetensors")
        _ = try PythonVenv.run(python, script: Self.peftLogitsScript,
                               [ref.modelDirectory.path, dir.path, out.path, "\(rows.map { $0.map(Int.init) })"])
        let theirs = try SafetensorsFile(url: out).tensor("logits")
        XCTAssertEqual(theirs.shape, ours.shape)
        let error = ours.maxAbsDifference(theirs)
        assertPinned("peft.logits", Double(error), within: Tolerance.peftLogits, "PEFT PeftModel.from_pretrained with our adapter")
    }

    /// We read an adapter PEFT itself saved (a subset of layers and projections, use_rslora, random B) and
    /// compute PEFT's logits with it.
    func testWeReadPEFTsOwnAdapterWithItsLogits() throws {
        let ref = try Self.reference()
        guard let python = PythonVenv.python else { throw XCTSkip("no Python with torch, transformers and peft (~/.cache/prune-dev/venv)") }
        let dir = scratch.appendingPathComponent("peft-made")
        let out = scratch.appendingPathComponent("peft-made-logits.safetensors")
        let rows = ref.idRows("input_ids")
        _ = try PythonVenv.run(python, script: Self.peftSaveScript, [ref.modelDirectory.path, dir.path, out.path, "\(rows.map { $0.map(Int.init) })"])
        let adapter = try PEFTAdapter.read(dir)
        XCTAssertEqual(adapter.config.layers, [1, 3])
        XCTAssertEqual(adapter.config.targets, [.q, .v, .down])
        XCTAssertTrue(adapter.config.useRSLoRA)
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        try adapter.attach(to: model, directory: dir)
        let ours = model.forward(tokens: rows.flatMap { $0 }, batch: rows.count, length: rows[0].count).logits
        let error = ours.maxAbsDifference(try SafetensorsFile(url: out).tensor("logits"))
        assertPinned("peft.logits", Double(error), within: Tolerance.peftLogits, "PEFT-saved adapter (rslora, layers 1 and 3) read by us")
    }

    /// argv: base, adapter directory to save, output .safetensors, input ids.
    static let peftSaveScript = """
    import sys, json, torch
    from transformers import LlamaForCausalLM
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    torch.set_num_threads(2)
    torch.manual_seed(0)
    base = LlamaForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], layers_to_transform=[1, 3],
                        use_rslora=True, init_lora_weights=False, task_type="CAUSAL_LM")
    model = get_peft_model(base, config).eval()
    model.save_pretrained(sys.argv[2])
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(json.loads(sys.argv[4]))).logits
    save_file({"logits": logits.float().contiguous()}, sys.argv[3])
    """

    /// argv: base, adapter, output .safetensors, input ids as a JSON list of rows.
    static let peftLogitsScript = """
    import sys, json, torch
    from transformers import LlamaForCausalLM
    from peft import PeftModel
    from safetensors.torch import save_file
    torch.set_num_threads(2)
    base = LlamaForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
    model = PeftModel.from_pretrained(base, sys.argv[2]).eval()
    ids = torch.tensor(json.loads(sys.argv[4]))
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    save_file({"logits": logits.float().contiguous()}, sys.argv[3])
    """
}
