// The same benchmark run by transformers (+ PEFT for training) on the same files, when a Python with
// torch and transformers is present. The script is written to a temporary file and run as a child process.
import Foundation
import Support

/// Runs transformers on a checkpoint for comparison.
public enum PyTorchBaseline {
    /// A Python that can import torch and transformers: $PRUNE_PYTHON, the dev venv, or python3; nil if none.
    public static func findPython(explicit: String? = nil) -> String? {
        var candidates: [String] = []
        if let explicit { candidates.append(explicit) }
        if let env = ProcessInfo.processInfo.environment["PRUNE_PYTHON"] { candidates.append(env) }
        candidates.append(NSHomeDirectory() + "/.cache/prune-dev/venv/bin/python")
        candidates.append("/usr/bin/python3")
        candidates.append("/usr/local/bin/python3")
        for py in candidates where FileManager.default.isExecutableFile(atPath: py) {
            if (try? ChildProcess.run(py, ["-c", "import torch, transformers"]))?.status == 0 { return py }
        }
        return nil
    }

    static let script = #"""
import json, resource, sys, time
import torch
from transformers import LlamaForCausalLM
mode, path, threads, batch, length, reps, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
autocast = len(sys.argv) > 8 and sys.argv[8] == "autocast"
import contextlib
def maybe_autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
torch.set_num_threads(threads)
torch.manual_seed(1)
t_load = time.perf_counter()
model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32 if dtype == "f32" else "auto")
load_seconds = time.perf_counter() - t_load
V = model.config.vocab_size
ids = torch.randint(0, V, (batch, length))
if mode == "forward":
    model.eval()
    with torch.inference_mode(), maybe_autocast():
        model(ids)
        t0 = time.perf_counter()
        for _ in range(reps):
            model(ids)
        dt = time.perf_counter() - t0
else:
    from peft import LoraConfig, get_peft_model
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    if mode == "train-checkpointed":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, cfg)
    model.train()
    def step():
        with maybe_autocast():
            out = model(ids, labels=ids)
        out.loss.backward()
        model.zero_grad(set_to_none=False)
    step()
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    dt = time.perf_counter() - t0
print(json.dumps({"tokens_per_second": batch * length * reps / dt, "load_seconds": load_seconds,
                  "peak_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""#

    /// tokens/s, peak memory and load seconds of transformers' forward ("forward") or a PEFT LoRA r=8 step on all
    /// seven projections ("train", or "train-checkpointed" with gradient checkpointing). `storedDType` loads the
    /// weights in the checkpoint's own dtype (bf16 stays bf16, as prune keeps it), else in float32. `autocast` runs the
    /// forward under torch.autocast("cpu", dtype=torch.bfloat16), as a PyTorch user gets bf16 compute (oneDNN underneath).
    public static func measure(python: String, mode: String, checkpoint: URL, threads: Int, batch: Int, length: Int,
                               repetitions: Int, storedDType: Bool = false, autocast: Bool = false) throws -> (tokensPerSecond: Double, peakMemoryBytes: Int, loadSeconds: Double) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("prune-bench-\(UUID().uuidString).py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try ChildProcess.run(python, [file.path, mode, checkpoint.path, "\(threads)", "\(batch)", "\(length)", "\(repetitions)", storedDType ? "stored" : "f32",
                                              autocast ? "autocast" : "f32"],
                        environment: ["OMP_NUM_THREADS": "\(threads)", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"])
        guard r.status == 0, let line = r.stdout.split(separator: "\n").last,
              let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let tps = (obj["tokens_per_second"] as? NSNumber)?.doubleValue,
              let mem = (obj["peak_memory_bytes"] as? NSNumber)?.intValue,
              let load = (obj["load_seconds"] as? NSNumber)?.doubleValue else {
            throw PyTorchError(message: "PyTorch baseline failed: " + r.stderr.split(separator: "\n").suffix(3).joined(separator: " | "))
        }
        return (tps, mem, load)
    }

    struct PyTorchError: Error, CustomStringConvertible { let message: String; var description: String { message } }
}
