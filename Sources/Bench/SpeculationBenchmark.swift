// `prune bench --speculate MODEL`: self-speculative greedy decoding on real prompts, ours beside transformers'.
// The same prompt ids go to both engines (the first records of a dataset, cut to P tokens, encoded once by our
// tokenizer); each continues N greedy tokens, plainly and speculatively — ours with `--speculate exit:auto` (the
// model's speculation.json, else --calibration DATA), transformers' with `generate(assistant_early_exit=E)` for each
// asked E (its LayerSkip path: the first E layers + lm_head draft, no shared KV cache). Tokens/s are whole
// generations (prompt included) summed over the prompts, each engine's speculative output checked against its own
// plain greedy output.
import Data
import Foundation
import Generation
import Jobs
import Llama
import Support
import Tokenizers

/// One run of the speculation benchmark.
public struct SpeculationBenchmark: Codable, Sendable {
    public var model: String
    public var prompts: Int
    public var promptTokens: Int
    public var newTokens: Int
    public var threads: Int
    public var plainTokensPerSecond: Double
    public var autoTokensPerSecond: Double
    /// What exit:auto chose per prompt.
    public var autoChoices: [String]
    /// Prompts whose exit:auto output equals plain greedy's.
    public var autoIdentical: Int
    /// transformers: plain greedy, and per E assistant_early_exit tokens/s and prompts equal to its plain output.
    public var transformersPlainTokensPerSecond: Double?
    public var transformersEarlyExit: [TransformersEarlyExit]
    /// Prompts where our plain greedy ids equal transformers' (same weights, same prompt ids).
    public var enginesAgree: Int?

    public struct TransformersEarlyExit: Codable, Sendable {
        public var exit: Int
        public var tokensPerSecond: Double
        public var identical: Int
    }

    public var autoSpeedup: Double { plainTokensPerSecond > 0 ? autoTokensPerSecond / plainTokensPerSecond : 0 }
    /// The best assistant_early_exit setting (by tokens/s).
    public var bestTransformers: TransformersEarlyExit? { transformersEarlyExit.max { $0.tokensPerSecond < $1.tokensPerSecond } }

    /// Measures `source` on the first `prompts` records of `dataset` cut to `promptTokens`, `newTokens` each;
    /// transformers (when `python` is given) with assistant_early_exit at each of `exits` (empty: exit:auto's choices).
    public static func measure(_ source: ModelSource, dataset: URL, prompts count: Int, promptTokens P: Int, newTokens N: Int,
                               calibration: URL?, python: String?, exits: [Int], threads: Int,
                               log: JobLog = .standardError) throws -> SpeculationBenchmark {
        let tokenizer = try source.requiredTokenizer(for: "the speculation benchmark's prompts")
        let data = try Dataset(url: dataset)
        var promptIDs: [[Int32]] = []
        for record in data.records where promptIDs.count < count {
            let ids: [Int32]
            switch record {
            case .ids(let given): ids = given
            case .text(let text): ids = tokenizer.encode(text)
            }
            if ids.count >= P { promptIDs.append(Array(ids.prefix(P))) }
        }
        guard !promptIDs.isEmpty else { throw PruneError(file: dataset, "no record has \(P) or more tokens") }
        let model = try source.loadModel(log: log)
        if let bad = promptIDs.joined().first(where: { Int($0) >= model.config.vocabSize }) {
            throw PruneError(file: dataset, "token id \(bad) is outside the model's vocabulary")
        }
        var sampling = SamplingOptions()
        sampling.maxTokens = min(N, model.config.maxPositionEmbeddings - P)   // both engines run the full N tokens: no stop token
        let ours = try PromptDecoding.measure(model: model, tokenizer: tokenizer, source: source, prompts: promptIDs, sampling: sampling,
                                              request: SpeculationRequest(draft: .automaticExit, calibration: calibration), log: log)
        var result = SpeculationBenchmark(
            model: source.path, prompts: promptIDs.count, promptTokens: P, newTokens: N, threads: threads,
            plainTokensPerSecond: ours.plainTokensPerSecond, autoTokensPerSecond: ours.autoTokensPerSecond,
            autoChoices: ours.choices, autoIdentical: ours.identical, transformersPlainTokensPerSecond: nil, transformersEarlyExit: [], enginesAgree: nil)
        if let python {
            let chosen = ours.chosenExits
            let asked = exits.isEmpty ? (chosen.isEmpty ? [max(1, model.layers.count / 4)] : chosen) : exits
            let t = try TransformersSpeculation.measure(python: python, checkpoint: source.directory, threads: threads, prompts: promptIDs,
                                                        newTokens: sampling.maxTokens, exits: asked)
            result.transformersPlainTokensPerSecond = t.plain
            result.transformersEarlyExit = t.exits
            result.enginesAgree = zip(t.plainIDs, ours.plainIDs).filter { $0.0 == $0.1.map(Int.init) }.count
        }
        return result
    }
}

/// transformers' greedy generate and generate(assistant_early_exit=E) on the same prompt ids.
enum TransformersSpeculation {
    static let script = #"""
import json, sys, time
import torch
from transformers import LlamaForCausalLM
path, threads, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
prompts = json.loads(sys.argv[4]); exits = json.loads(sys.argv[5])
torch.set_num_threads(threads)
model = LlamaForCausalLM.from_pretrained(path, dtype="auto").eval()
def run(ids, **kw):
    x = torch.tensor([ids])
    t0 = time.perf_counter()
    out = model.generate(x, max_new_tokens=N, min_new_tokens=N, do_sample=False, pad_token_id=0, **kw)
    return out[0, len(ids):].tolist(), time.perf_counter() - t0
with torch.inference_mode():
    run(prompts[0][:4])
    plain = [run(p) for p in prompts]
    result = {"plain_ids": [o for o, _ in plain], "plain_tokens_per_second": sum(len(o) for o, _ in plain) / sum(s for _, s in plain), "exits": []}
    for e in exits:
        got = [run(p, assistant_early_exit=e) for p in prompts]
        result["exits"].append({"exit": e, "tokens_per_second": sum(len(o) for o, _ in got) / sum(s for _, s in got),
                                "identical": sum(1 for (o, _), (q, _) in zip(got, plain) if o == q)})
print(json.dumps(result))
"""#

    static func measure(python: String, checkpoint: URL, threads: Int, prompts: [[Int32]], newTokens: Int,
                        exits: [Int]) throws -> (plain: Double, exits: [SpeculationBenchmark.TransformersEarlyExit], plainIDs: [[Int]]) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("prune-speculate-\(UUID().uuidString).py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let ids = String(decoding: try JSONEncoder.sortedLine.encode(prompts.map { $0.map(Int.init) }), as: UTF8.self)
        let r = try ChildProcess.run(python, [file.path, checkpoint.path, "\(threads)", "\(newTokens)", ids, "\(exits)"],
                                     environment: ["OMP_NUM_THREADS": "\(threads)", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"])
        guard r.status == 0, let line = r.stdout.split(separator: "\n").last,
              let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let plain = (obj["plain_tokens_per_second"] as? NSNumber)?.doubleValue,
              let plainIDs = obj["plain_ids"] as? [[Int]], let list = obj["exits"] as? [[String: Any]] else {
            throw PruneError("transformers", "assistant_early_exit failed: " + r.stderr.split(separator: "\n").suffix(2).joined(separator: " | "))
        }
        let exits = list.compactMap { e -> SpeculationBenchmark.TransformersEarlyExit? in
            guard let x = e["exit"] as? Int, let t = (e["tokens_per_second"] as? NSNumber)?.doubleValue, let n = e["identical"] as? Int else { return nil }
            return SpeculationBenchmark.TransformersEarlyExit(exit: x, tokensPerSecond: t, identical: n)
        }
        return (plain, exits, plainIDs)
    }
}
