// Healing side by side: our `finetune` and PEFT + transformers train the same LoRA on the same windows in the
// same order with the same optimizer, schedule and clipping, each in its own process; the table gives wall
// time, peak memory and held-out perplexity before and after. The windows are written once as JSONL input_ids
// (one window per record, file order), so both engines see identical data.
import Checkpoint
import Data
import Finetuning
import Foundation
import Reports
import Support
import Tokenizers

/// One engine's healing run.
public struct HealingResult: Codable, Sendable {
    public var engine: String
    public var seconds: Double
    public var peakMemoryBytes: Int
    public var perplexityBefore: Double
    public var perplexityAfter: Double
    /// Training tokens per second over the whole run (evaluations and loading included).
    public var tokensPerSecond: Double
}

/// The healing comparison.
public enum HealingBenchmark {
    /// The anchor recipe's knobs.
    public struct Settings: Sendable {
        public var model: URL, dataset: URL, valid: URL
        public var steps = 123, batch = 4, context = 256, rank = 8, threads = 2, warmup = 10
        public var alpha = 16.0, lr = 2e-4
        public init(model: URL, dataset: URL, valid: URL) { self.model = model; self.dataset = dataset; self.valid = valid }
    }

    /// Packs `dataset` and `valid` as `finetune` would and writes the windows as JSONL input_ids files in `dir`.
    public static func writeWindows(_ s: Settings, into dir: URL) throws -> (train: URL, valid: URL, trainWindows: Int) {
        var o = FinetuneOptions(model: s.model.path, dataset: s.dataset.path, output: dir.path)
        o.valid = s.valid.path
        o.context = s.context
        let tokenizer = try TokenizerLoader.loadIfPresent(directory: s.model)
        let vocab = try LlamaConfig.load(s.model.appendingPathComponent("config.json")).vocabSize
        let data = try FinetuneData.prepare(o, tokenizer: tokenizer, vocabularySize: vocab)
        func write(_ windows: [TrainingWindow], _ name: String) throws -> URL {
            let url = dir.appendingPathComponent(name)
            let text = windows.map { "{\"input_ids\": [" + $0.tokens.map(String.init).joined(separator: ",") + "]}\n" }.joined()
            try AtomicFile.write(Data(text.utf8), to: url)
            return url
        }
        return (try write(data.train, "train-windows.jsonl"), try write(data.heldOut, "valid-windows.jsonl"), data.train.count)
    }

    /// Runs the `finetune` executable on the windows (file order, no packing) and reads its results.
    public static func runOurs(finetune: URL, _ s: Settings, train: URL, valid: URL, output: URL) throws -> HealingResult {
        let args = [s.model.path, "--lora", "--rank", "\(s.rank)", "--alpha", "\(s.alpha)", "--dataset", train.path, "--valid", valid.path,
                    "--context", "\(s.context)", "--no-packing", "--no-shuffle", "--batch-size", "\(s.batch)", "--steps", "\(s.steps)",
                    "--lr", "\(s.lr)", "--warmup-steps", "\(s.warmup)", "--schedule", "cosine", "--max-grad-norm", "1",
                    "--threads", "\(s.threads)", "-o", output.path]
        let start = Date()
        let r = try ChildProcess.run(finetune.path, args)
        let seconds = Date().timeIntervalSince(start)
        guard r.status == 0 else { throw PruneError(file: finetune, "failed: \(r.stderr.split(separator: "\n").suffix(2).joined(separator: " | "))") }
        let records = try MetricsLog.read(output.appendingPathComponent("metrics.jsonl"))
        let evals = records.compactMap { $0["eval_loss"] as? Double }
        let peak = r.stdout.split(separator: "\n").last.flatMap { line -> Int? in
            guard let range = line.range(of: "peak memory ") else { return nil }
            return Double(line[range.upperBound...].prefix { $0 != " " }).map { Int($0 * 1e9) }
        } ?? 0
        return HealingResult(engine: "prune finetune", seconds: seconds, peakMemoryBytes: peak,
                             perplexityBefore: exp(evals.first ?? .nan), perplexityAfter: exp(evals.last ?? .nan),
                             tokensPerSecond: Double(s.steps * s.batch * s.context) / seconds)
    }

    /// Runs PEFT + transformers on the same windows with the same recipe.
    public static func runPEFT(python: String, _ s: Settings, train: URL, valid: URL) throws -> HealingResult {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("prune-heal-\(UUID().uuidString).py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let start = Date()
        let r = try ChildProcess.run(python, [file.path, s.model.path, train.path, valid.path, "\(s.steps)", "\(s.batch)", "\(s.rank)",
                                              "\(s.alpha)", "\(s.lr)", "\(s.warmup)", "\(s.threads)"],
                                     environment: ["OMP_NUM_THREADS": "\(s.threads)", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"])
        let seconds = Date().timeIntervalSince(start)
        guard r.status == 0, let line = r.stdout.split(separator: "\n").last,
              let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let before = obj["before"] as? Double, let after = obj["after"] as? Double, let peak = (obj["peak"] as? NSNumber)?.intValue else {
            throw PruneError("PEFT baseline", "failed: " + r.stderr.split(separator: "\n").suffix(3).joined(separator: " | "))
        }
        return HealingResult(engine: "PEFT + transformers", seconds: seconds, peakMemoryBytes: peak, perplexityBefore: exp(before),
                             perplexityAfter: exp(after), tokensPerSecond: Double(s.steps * s.batch * s.context) / seconds)
    }

    /// A plain PyTorch loop (no Trainer, so the data order is ours): AdamW, cosine schedule with warmup, clipping at 1.
    static let script = #"""
import json, math, resource, sys, torch
from transformers import LlamaForCausalLM, get_cosine_schedule_with_warmup
from peft import LoraConfig, get_peft_model
model_dir, train, valid = sys.argv[1], sys.argv[2], sys.argv[3]
steps, batch, rank, alpha, lr, warmup, threads = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10])
torch.set_num_threads(threads)
def load(path):
    return [json.loads(l)["input_ids"] for l in open(path) if l.strip()]
train_w, valid_w = load(train), load(valid)
model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
def evaluate():
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(valid_w), batch):
            ids = torch.tensor(valid_w[i:i + batch])
            loss = model(ids, labels=ids).loss.item()
            k = ids.shape[0] * (ids.shape[1] - 1)
            total, n = total + loss * k, n + k
    model.train()
    return total / n
before = evaluate()
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
sched = get_cosine_schedule_with_warmup(opt, warmup, steps)
per_epoch = len(train_w) // batch
model.train()
for step in range(steps):
    j = step % per_epoch
    ids = torch.tensor(train_w[j * batch:(j + 1) * batch])
    loss = model(ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    opt.step(); sched.step(); opt.zero_grad()
    print(f"step {step + 1} loss {loss.item():.4f}", file=sys.stderr, flush=True)
after = evaluate()
print(json.dumps({"before": before, "after": after, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""#
}
