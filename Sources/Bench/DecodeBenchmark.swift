// `prune bench --decode`: batch-1 generation as a user feels it. A prompt of P tokens, then N new tokens greedily:
// prefill tokens/s, decode tokens/s, what a verification pass of K+1 rows costs against one step (what
// self-speculation pays), the bytes of weights (and KV cache) a token reads, the read bandwidth measured in the
// same run, and the share of that bound reached; beside transformers' greedy `generate` and llama.cpp's
// llama-bench on the same weights at the same dtype and threads, when they are there.
// Dimension glossary: P prompt tokens, N new tokens, M rows of a verification pass, L layers.
import Foundation
import Generation
import Llama
import Support
import Tensor

/// One decoding measurement.
public struct DecodeBenchmark: Codable, Sendable {
    public var model: String
    /// "bf16", "f16" or "f32": the matrices as held.
    public var weightsDType: String
    public var threads: Int
    public var promptTokens: Int
    public var newTokens: Int
    public var prefillTokensPerSecond: Double
    public var decodeTokensPerSecond: Double
    /// Cost of one pass over M new rows (all layers + argmax head), in one-row steps, by M.
    public var verificationSteps: [String: Double]
    /// Bytes of weights read per token, and of KV cache at the mean position.
    public var weightBytesPerToken: Int
    public var cacheBytesPerToken: Int
    /// Streaming-read bandwidth measured in this run over a buffer of the bytes a token reads (weights + cache),
    /// read again and again as decoding does: main memory where they exceed the last-level cache, that cache where
    /// they fit. The tokens/s it allows is the bound.
    public var readBytesPerSecond: Double
    public var boundTokensPerSecond: Double
    /// The same read over 1 GiB (main memory on every CPU seen), for comparison across machines.
    public var memoryReadBytesPerSecond: Double
    /// decode / bound.
    public var shareOfBound: Double
    /// transformers' greedy generate, and llama.cpp's llama-bench (pp P, tg N), when measured.
    public var transformersPrefillTokensPerSecond: Double?
    public var transformersDecodeTokensPerSecond: Double?
    public var llamaCppPrefillTokensPerSecond: Double?
    public var llamaCppDecodeTokensPerSecond: Double?
    /// Why a peer has no figure (not found, conversion failed…).
    public var notes: [String] = []

    /// The rows whose verification cost is measured.
    public static let verificationRows = [2, 4, 5, 8]

    /// Measures `model` (loaded from `directory`) with a deterministic prompt of P random ids; N new tokens ×
    /// `repetitions` after one warm-up. `memoryBandwidth` is the 1 GiB read rate measured for this run; the bound's
    /// read is measured here, over the bytes a token reads.
    public static func measure(model: LlamaModel, name: String, promptTokens P: Int, newTokens N: Int, repetitions: Int,
                               memoryReadBytesPerSecond memoryBandwidth: Double) -> DecodeBenchmark {
        let c = model.config
        var rng = SeededGenerator(seed: 11)
        let prompt = (0..<P).map { _ in Int32.random(in: 0..<Int32(c.vocabSize), using: &rng) }
        var options = SamplingOptions()
        options.maxTokens = N
        let generator = Generator(model: model)
        _ = try? generator.generate(prompt: Array(prompt.prefix(8)), options: { var o = options; o.maxTokens = 8; return o }())
        var prefill = 0.0, decode = 0.0
        for _ in 0..<max(1, repetitions) {
            _ = try? generator.generate(prompt: prompt, options: options)
            prefill += generator.timing.prefillSeconds / Double(P)
            decode += generator.timing.decodeSeconds / Double(max(1, generator.timing.decodeTokens))
        }
        let reps = Double(max(1, repetitions))
        let verification = verificationCost(model: model, prompt: prompt, repetitions: 8 * max(1, repetitions))
        let element = model.lmHead.element.rawValue
        let kv = 2 * c.numHiddenLayers * c.numKeyValueHeads * c.headDim * 4 * (P + N / 2)
        let bytes = model.weightBytes
        // A buffer past 1 GiB exceeds every last-level cache: its rate is the 1 GiB one.
        let bandwidth = bytes + kv < 1 << 30 ? ReadBandwidth.measure(bytes: bytes + kv, passes: 8, parallelism: model.parallelism)
                                             : memoryBandwidth
        let bound = bandwidth / Double(bytes + kv)
        let decodeRate = reps / decode
        return DecodeBenchmark(model: name, weightsDType: element, threads: model.parallelism.threads, promptTokens: P, newTokens: N,
                               prefillTokensPerSecond: reps / prefill, decodeTokensPerSecond: decodeRate,
                               verificationSteps: verification, weightBytesPerToken: bytes, cacheBytesPerToken: kv,
                               readBytesPerSecond: bandwidth, boundTokensPerSecond: bound, memoryReadBytesPerSecond: memoryBandwidth,
                               shareOfBound: decodeRate / bound)
    }

    /// Seconds of an M-row pass (every layer + the head's argmax) over seconds of a one-row pass, after the prompt,
    /// each rolled back after it is timed.
    static func verificationCost(model: LlamaModel, prompt: [Int32], repetitions: Int) -> [String: Double] {
        let most = verificationRows.reduce(1, max)
        let session = DecodeSession(model: model, capacity: prompt.count + most, rows: most)
        let C = model.config.hiddenSize, L = model.layers.count
        let x = Tensor(zeros: [most, C])
        session.prefill(prompt, last: x.data)
        let p = session.cache.length
        func seconds(rows m: Int) -> Double {
            var best = Double.infinity
            for _ in 0..<repetitions {
                for i in 0..<m { model.embed(prompt[i % prompt.count], into: x.data + i * C) }
                let start = DispatchTime.now().uptimeNanoseconds
                session.run(0..<L, on: x.data, rows: m, at: p)
                _ = session.argmax(of: x.data, rows: m)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                session.cache.truncate(to: p)
            }
            return best
        }
        let one = seconds(rows: 1)
        var out: [String: Double] = [:]
        for m in verificationRows { out["\(m)"] = seconds(rows: m) / one }
        return out
    }
}

/// transformers' greedy `generate` on the same checkpoint: prefill and decode tokens/s.
public enum TransformersDecodeBaseline {
    static let script = #"""
import json, sys, time
import torch
from transformers import LlamaForCausalLM
path, threads, P, N, reps, dtype = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
torch.set_num_threads(threads)
model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32 if dtype == "f32" else "auto").eval()
g = torch.Generator().manual_seed(11)
ids = torch.randint(0, model.config.vocab_size, (1, P), generator=g)
def run(n):
    t0 = time.perf_counter()
    model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
    return time.perf_counter() - t0
with torch.inference_mode():
    run(4)
    first = min(run(1) for _ in range(reps))
    full = min(run(N) for _ in range(reps))
print(json.dumps({"prefill_tokens_per_second": P / first, "decode_tokens_per_second": (N - 1) / (full - first)}))
"""#

    public static func measure(python: String, checkpoint: URL, threads: Int, promptTokens: Int, newTokens: Int,
                               repetitions: Int, storedDType: Bool) throws -> (prefill: Double, decode: Double) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("prune-decode-\(UUID().uuidString).py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try ChildProcess.run(python, [file.path, checkpoint.path, "\(threads)", "\(promptTokens)", "\(newTokens)",
                                              "\(repetitions)", storedDType ? "stored" : "f32"],
                                     environment: ["OMP_NUM_THREADS": "\(threads)", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"])
        guard r.status == 0, let line = r.stdout.split(separator: "\n").last,
              let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let prefill = (obj["prefill_tokens_per_second"] as? NSNumber)?.doubleValue,
              let decode = (obj["decode_tokens_per_second"] as? NSNumber)?.doubleValue else {
            throw PruneError("transformers", "generate failed: " + r.stderr.split(separator: "\n").suffix(2).joined(separator: " | "))
        }
        return (prefill, decode)
    }
}

/// llama.cpp's own figures on the same checkpoint: converted with its convert_hf_to_gguf.py at the same dtype, then
/// llama-bench -p P -n N.
public enum LlamaCppDecodeBaseline {
    /// `directory` holds build/bin/llama-bench and convert_hf_to_gguf.py (shared/scripts/get-llamacpp.sh builds it);
    /// the GGUF goes to `cache` and is reused.
    public static func measure(directory: URL, python: String, checkpoint: URL, name: String, dtype: String, cache: URL,
                               threads: Int, promptTokens: Int, newTokens: Int, repetitions: Int) throws -> (prefill: Double, decode: Double) {
        let bench = directory.appendingPathComponent("build/bin/llama-bench")
        guard FileManager.default.isExecutableFile(atPath: bench.path) else {
            throw PruneError(directory.path, "no build/bin/llama-bench (build it with shared/scripts/get-llamacpp.sh)")
        }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let gguf = cache.appendingPathComponent("\(name)-\(dtype).gguf")
        if !FileManager.default.fileExists(atPath: gguf.path) {
            let partial = gguf.appendingPathExtension("partial")
            let r = try ChildProcess.run(python, [directory.appendingPathComponent("convert_hf_to_gguf.py").path, checkpoint.path,
                                                  "--outtype", dtype, "--outfile", partial.path],
                                         environment: ["PYTHONPATH": directory.appendingPathComponent("gguf-py").path, "HF_HUB_OFFLINE": "1"])
            guard r.status == 0 else {
                throw PruneError(checkpoint.path, "convert_hf_to_gguf.py failed: " + r.stderr.split(separator: "\n").suffix(2).joined(separator: " | "))
            }
            try FileManager.default.moveItem(at: partial, to: gguf)
        }
        let r = try ChildProcess.run(bench.path, ["-m", gguf.path, "-p", "\(promptTokens)", "-n", "\(newTokens)", "-t", "\(threads)",
                                                  "-r", "\(repetitions)", "-o", "json"],
                                     environment: ["LD_LIBRARY_PATH": directory.appendingPathComponent("build/bin").path])
        guard r.status == 0, let rows = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] else {
            throw PruneError(bench.path, "failed: " + r.stderr.split(separator: "\n").suffix(2).joined(separator: " | "))
        }
        func rate(_ key: String) -> Double? {
            rows.first { (($0[key] as? NSNumber)?.intValue ?? 0) > 0 }.flatMap { ($0["avg_ts"] as? NSNumber)?.doubleValue }
        }
        guard let prefill = rate("n_prompt"), let decode = rate("n_gen") else {
            throw PruneError(bench.path, "printed no pp/tg rows")
        }
        return (prefill, decode)
    }
}
