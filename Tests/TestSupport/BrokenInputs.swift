// A corpus of broken inputs as users meet them: checkpoints from converters that got something wrong
// (a missing tensor, a transposed one, integer weights, zero heads, a negative or NaN epsilon, a vocab
// size no file could hold, a truncated file, a header that lies about its offsets, another architecture,
// garbage where config.json or a tokenizer should be, …) and datasets from scripts that did (bad JSON, an
// unknown format, ids of another vocabulary, …). Each case is made from the shipped stories260K by one
// change, so that exactly that change is what a command must refuse.
import Checkpoint
import Foundation
import Support
import Tensor

/// One broken input: its name and the directory (checkpoint) or file (dataset) it lives at.
public struct BrokenInput {
    public let name: String
    public let url: URL

    public init(name: String, url: URL) {
        self.name = name
        self.url = url
    }
}

/// Makes the corpus under a scratch directory.
public enum BrokenInputs {
    /// Broken checkpoint directories (each a stories260K copy with one change) under `directory`.
    public static func checkpoints(in directory: URL) throws -> [BrokenInput] {
        var cases: [BrokenInput] = []
        func make(_ name: String, _ change: (URL) throws -> Void) throws {
            let dir = directory.appendingPathComponent(name)
            try FileManager.default.copyItem(at: Fixtures.stories260K, to: dir)
            try change(dir)
            cases.append(BrokenInput(name: name, url: dir))
        }
        func config(_ edit: @escaping (inout [String: Any]) -> Void) -> (URL) throws -> Void {
            { dir in
                let url = dir.appendingPathComponent("config.json")
                var c = try ConfigJSON.read(url)
                edit(&c)
                try JSONSerialization.data(withJSONObject: c, options: [.sortedKeys]).write(to: url)
            }
        }
        func configText(_ replace: String, with text: String) -> (URL) throws -> Void {
            { dir in
                let url = dir.appendingPathComponent("config.json")
                let s = try String(contentsOf: url, encoding: .utf8)
                precondition(s.contains(replace), "stories260K config.json has no \(replace)")
                try Data(s.replacingOccurrences(of: replace, with: text).utf8).write(to: url)
            }
        }
        func file(_ name: String, _ bytes: Data) -> (URL) throws -> Void {
            { try bytes.write(to: $0.appendingPathComponent(name)) }
        }

        try make("missing-tensor", tensors { $0.removeAll { $0.name == "model.layers.1.mlp.up_proj.weight" } })
        try make("wrong-shape", tensors { items in
            let i = items.firstIndex { $0.name == "model.layers.2.mlp.down_proj.weight" }!
            items[i] = SafetensorsItem(name: items[i].name, tensor: Tensor(zeros: [172, 64]))
        })
        try make("integer-weights", tensors { items in
            let i = items.firstIndex { $0.name == "model.norm.weight" }!
            // Lives as long as the test process: the item reads it when the file is written.
            let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
            zeros.initializeMemory(as: UInt8.self, repeating: 0)
            items[i] = SafetensorsItem(name: items[i].name, dtype: .I32, shape: [64], bytes: UnsafeRawBufferPointer(zeros))
        })
        try make("unexpected-layer-tensor", tensors { $0.append(SafetensorsItem(name: "model.layers.0.self_attn.q_norm.weight", tensor: Tensor(zeros: [8]))) })
        try make("layer-past-config", tensors { $0.append(SafetensorsItem(name: "model.layers.5.input_layernorm.weight", tensor: Tensor(zeros: [64]))) })
        try make("zero-heads", config { $0["num_attention_heads"] = 0 })
        try make("heads-not-dividing-hidden", config { $0["num_attention_heads"] = 7; $0["num_key_value_heads"] = 7; $0["head_dim"] = nil })
        try make("kv-heads-not-dividing", config { $0["num_key_value_heads"] = 3 })
        try make("negative-layers", config { $0["num_hidden_layers"] = -2 })
        try make("negative-eps", config { $0["rms_norm_eps"] = -1e-5 })
        try make("nan-eps", configText("\"rms_norm_eps\": 1e-05", with: "\"rms_norm_eps\": NaN"))
        try make("zero-rope-theta", config { $0["rope_theta"] = 0 })
        try make("bad-rope-scaling", config { $0["rope_scaling"] = ["rope_type": "linear", "factor": -2] })
        try make("unknown-rope-scaling", config { $0["rope_scaling"] = ["rope_type": "longrope", "factor": 2] })
        try make("huge-vocab", config { $0["vocab_size"] = 1_000_000_000 })
        try make("overflowing-sizes", config { $0["hidden_size"] = 1 << 62; $0["intermediate_size"] = 1 << 62 })
        try make("zero-max-positions", config { $0["max_position_embeddings"] = 0 })
        try make("non-llama-architecture", config { $0["model_type"] = "gpt2"; $0["architectures"] = ["GPT2LMHeadModel"] })
        try make("not-silu", config { $0["hidden_act"] = "gelu" })
        try make("garbage-config", file("config.json", Data("{\"hidden_size\": 64, oops".utf8)))
        try make("config-not-an-object", file("config.json", Data("[1, 2, 3]".utf8)))
        try make("config-missing-key", config { $0["hidden_size"] = nil })
        try make("config-wrong-type", config { $0["num_hidden_layers"] = "five" })
        try make("truncated-safetensors", { dir in
            let url = dir.appendingPathComponent("model.safetensors")
            let data = try Data(contentsOf: url)
            try data.prefix(data.count / 2).write(to: url)
        })
        try make("header-lies-about-offsets", { dir in
            let url = dir.appendingPathComponent("model.safetensors")
            var data = try Data(contentsOf: url)
            let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            var header = String(decoding: data[8..<8 + n], as: UTF8.self)
            // The first offsets pair claims bytes far past the end; same header length, so only the lie differs.
            let range = header.range(of: "\"data_offsets\":[0,")!
            header.replaceSubrange(range, with: "\"data_offsets\":[9,")
            data.replaceSubrange(8..<8 + n, with: Data(header.utf8))
            try data.write(to: url)
        })
        try make("header-length-huge", { dir in
            let url = dir.appendingPathComponent("model.safetensors")
            var data = try Data(contentsOf: url)
            withUnsafeBytes(of: UInt64(1) << 40) { data.replaceSubrange(0..<8, with: $0) }
            try data.write(to: url)
        })
        try make("empty-safetensors", file("model.safetensors", Data()))
        try make("no-weights", { try FileManager.default.removeItem(at: $0.appendingPathComponent("model.safetensors")) })
        try make("index-names-missing-shard", { dir in
            try FileManager.default.moveItem(at: dir.appendingPathComponent("model.safetensors"),
                                             to: dir.appendingPathComponent("model-00001-of-00001.safetensors"))
            let file = try SafetensorsFile(url: dir.appendingPathComponent("model-00001-of-00001.safetensors"))
            var map = Dictionary(uniqueKeysWithValues: file.names.map { ($0, "model-00001-of-00001.safetensors") })
            map["model.norm.weight"] = "model-00002-of-00002.safetensors"
            try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        })
        try make("tokenizer-json-garbage", file("tokenizer.json", Data("{\"model\": {\"vocab\": ".utf8)))
        try make("tokenizer-json-ids-past-vocab", { dir in
            let url = dir.appendingPathComponent("tokenizer.json")
            var t = try ConfigJSON.read(url)
            var model = t["model"] as! [String: Any]
            var vocab = model["vocab"] as! [String: Any]
            vocab["zzz-extra"] = 600
            model["vocab"] = vocab
            t["model"] = model
            try JSONSerialization.data(withJSONObject: t).write(to: url)
        })
        try make("tokenizer-model-garbage", file("tokenizer.model", Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) })))
        try make("tokenizer-config-garbage", file("tokenizer_config.json", Data("not json".utf8)))
        return cases
    }

    /// Broken dataset files under `directory` (for commands that read a dataset, with stories260K).
    public static func datasets(in directory: URL) throws -> [BrokenInput] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let files: [(String, Data)] = [
            ("bad-json.jsonl", Data("{\"text\": \"In the beginning\"}\n{\"text\": \"no closing\"\n".utf8)),
            ("not-an-object.jsonl", Data("[\"text\", \"x\"]\n".utf8)),
            ("no-known-field.jsonl", Data("{\"content\": \"In the beginning\"}\n".utf8)),
            ("unknown-extension.parquet", Data("PAR1\u{0}\u{0}".utf8)),
            ("no-extension", Data("In the beginning".utf8)),
            ("ids-out-of-vocab.jsonl", Data("{\"input_ids\": [1, 2, 100000]}\n".utf8)),
            ("negative-ids.jsonl", Data("{\"input_ids\": [1, -5, 3]}\n".utf8)),
            ("fractional-ids.jsonl", Data("{\"input_ids\": [1, 2.5, 3]}\n".utf8)),
            ("empty.jsonl", Data()),
            ("only-blank-lines.jsonl", Data("\n\n  \n".utf8)),
            ("one-token-records.jsonl", Data("{\"input_ids\": [5]}\n{\"input_ids\": [7]}\n".utf8)),
            ("not-utf8.txt", Data([0x49, 0x6E, 0xFF, 0xFE, 0x20, 0xC3])),
        ]
        var cases: [BrokenInput] = []
        for (name, data) in files {
            let url = directory.appendingPathComponent(name)
            try data.write(to: url)
            cases.append(BrokenInput(name: name, url: url))
        }
        cases.append(BrokenInput(name: "missing.jsonl", url: directory.appendingPathComponent("missing.jsonl")))
        return cases
    }

    /// Broken multiple-choice task files under `directory` (for `prune eval --task`, with stories260K).
    public static func tasks(in directory: URL) throws -> [BrokenInput] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let good = "{\"context\": \"Once upon a\", \"choices\": [\"time\", \"tree\"], \"gold\": 0}\n"
        let files: [(String, String)] = [
            ("not-json.jsonl", good + "{\"context\": \"Once\", \"choices\": [\"upon\"\n"),
            ("no-context.jsonl", "{\"choices\": [\"time\", \"tree\"], \"gold\": 0}\n"),
            ("no-choices.jsonl", "{\"context\": \"Once upon a\", \"gold\": 0}\n"),
            ("empty-choices.jsonl", "{\"context\": \"Once upon a\", \"choices\": [], \"gold\": 0}\n"),
            ("gold-out-of-range.jsonl", good + "{\"context\": \"Once upon a\", \"choices\": [\"time\", \"tree\"], \"gold\": 2}\n"),
            ("gold-not-an-index.jsonl", "{\"context\": \"Once upon a\", \"choices\": [\"time\", \"tree\"], \"gold\": \"time\"}\n"),
            ("empty.jsonl", ""),
            ("task.csv", "context,choices,gold\n"),
        ]
        var cases: [BrokenInput] = []
        for (name, text) in files {
            let url = directory.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            cases.append(BrokenInput(name: name, url: url))
        }
        cases.append(BrokenInput(name: "missing.jsonl", url: directory.appendingPathComponent("missing.jsonl")))
        return cases
    }

    /// A change to the tensors of model.safetensors (the items as read, in data order).
    static func tensors(_ edit: @escaping (inout [SafetensorsItem]) -> Void) -> (URL) throws -> Void {
        { dir in
            let url = dir.appendingPathComponent("model.safetensors")
            let data = try Data(contentsOf: url)
            let tmp = dir.appendingPathComponent("source.safetensors")
            try data.write(to: tmp)
            defer { try? FileManager.default.removeItem(at: tmp) }
            let file = try SafetensorsFile(url: tmp)
            var items = try file.entries.map { e in
                SafetensorsItem(name: e.name, dtype: e.dtype, shape: e.shape, bytes: try file.rawBytes(e.name))
            }
            edit(&items)
            try SafetensorsWriter.write(items, to: url)
        }
    }
}
