// The check every export gets before it is reported as written: reload the files and compare their logits on a
// few tokens with the model that produced them (base + trained weights + adapters, in memory, Float32). A
// merge that changed nothing, wrote the wrong dtype or a corrupt tensor shows up here instead of in a user's
// evaluation weeks later (peft #1388, #2054; axolotl #1510). A failed check leaves the files in place, marked
// with EXPORT_CHECK_FAILED.txt, and is an error.
import Foundation
import Llama
import Support
import Tensor

/// Verifying a merged checkpoint against the model in memory.
public enum ExportCheck {
    /// The outcome of a passed check.
    public struct Result: Sendable {
        public var maxLogitDifference: Double
        public var bound: Double
        public var dtype: String
        /// The merged files' held-out loss, when the caller gave held-out data.
        public var heldOutLoss: Double?
        public var summary: String {
            String(format: "self-check: the merged files' logits are within %.2g of the model in memory (bound %.2g for %@)",
                   maxLogitDifference, bound, dtype)
        }
    }

    /// The unit roundoff of a stored dtype (half the distance from 1 to the next value): 2⁻⁸ for bfloat16 (8
    /// significant bits), 2⁻¹¹ for float16, 2⁻²⁴ for float32.
    static func unitRoundoff(_ dtype: String) -> Double {
        switch dtype {
        case "bfloat16": return 0x1p-8
        case "float16": return 0x1p-11
        default: return 0x1p-24
        }
    }

    /// Relative bound on max |Δlogit| / max(1, max |logit|): rounding every weight by up to one unit roundoff u
    /// moves the logits by a few tens of u through a deep model (SmolLM2-135M cut to 22 layers and LoRA-healed,
    /// stored in bf16: 21u), so 32u; Float32 files differ from the model in memory only by the order of the
    /// merged product's sums (W + s·B·A once instead of x·W + s·(x·A)·B), bounded at 1e-5.
    static func relativeBound(_ dtype: String) -> Double {
        max(32 * unitRoundoff(dtype), 1e-5)
    }

    /// Loads `merged` (its config, tensor shapes and layer count are validated by the load) and compares its
    /// logits on `tokens` with `model`'s. Throws, leaving a marker file, when they differ beyond the dtype's bound.
    /// `heldOut`, when given, measures the reloaded files' held-out loss (reported in the result).
    public static func verify(merged: URL, against model: LlamaModel, tokens: [Int32], parallelism: Parallelism,
                              heldOut: ((LlamaModel) -> Double)? = nil) throws -> Result {
        let probe = Array(tokens.prefix(32))
        // Files against memory in exact Float32 products, whatever --compute the run used; its held-out loss (below)
        // is measured the way the run measured its own.
        let precision = model.compute
        try model.compute(in: .f32)
        defer { try? model.compute(in: precision) }
        let b = model.forward(tokens: probe, batch: 1, length: probe.count).logits
        // The base's mapped pages leave the resident set while the merged copy is read: peak memory stays one model.
        model.dropResidentWeightPages()
        let reloaded = try LlamaModel.load(directory: merged, parallelism: parallelism)
        guard reloaded.layers.count == model.layers.count, reloaded.parameterCount == model.parameterCount else {
            return try fail(merged, "it has \(reloaded.layers.count) layers and \(reloaded.parameterCount) parameters, the model \(model.layers.count) and \(model.parameterCount)")
        }
        let a = reloaded.forward(tokens: probe, batch: 1, length: probe.count).logits
        let diff = Double(a.maxAbsDifference(b))
        let dtype = (try? ConfigDType.of(merged)) ?? "float32"
        let bound = relativeBound(dtype) * max(1, Double(b.maxAbs))
        guard diff.isFinite, diff <= bound else {
            return try fail(merged, String(format: "its logits differ from the model in memory by %.3g (bound %.3g for %@)", diff, bound, dtype))
        }
        try reloaded.compute(in: precision)
        return Result(maxLogitDifference: diff, bound: bound, dtype: dtype, heldOutLoss: heldOut?(reloaded))
    }

    /// The share of training's held-out gain (before − after, in memory) that the stored files give back, when it
    /// is more than 5 % (nil otherwise, or when training gained nothing): 16-bit rounding of W + s·B·A can undo a
    /// heal whose updates are small beside the weights.
    public static func roundingGivesBack(before: Double, after: Double, merged: Double) -> Double? {
        let gain = before - after
        guard gain > 0, merged.isFinite else { return merged.isFinite ? nil : 1 }
        let share = (merged - after) / gain
        return share > 0.05 ? share : nil
    }

    /// Tokens for a check without data (`prune merge`): 32 ids spread over the vocabulary, the same every run.
    public static func probeTokens(vocabularySize v: Int) -> [Int32] {
        var rng = SeededGenerator(seed: 0x5052_554E_4543_4B)
        return (0..<32).map { _ in Int32(Int.random(in: 0..<max(v, 1), using: &rng)) }
    }

    static func fail(_ merged: URL, _ problem: String) throws -> Result {
        try? AtomicFile.write(Data(("export self-check failed: " + problem + "\n").utf8),
                              to: merged.appendingPathComponent("EXPORT_CHECK_FAILED.txt"))
        throw PruneError(file: merged, "export self-check failed: \(problem); the files are kept, marked EXPORT_CHECK_FAILED.txt")
    }
}

/// The dtype config.json records ("torch_dtype" or transformers 5's "dtype").
enum ConfigDType {
    static func of(_ directory: URL) throws -> String {
        let url = directory.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: url.path),
              let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return "float32" }
        return (obj["torch_dtype"] as? String) ?? (obj["dtype"] as? String) ?? "float32"
    }
}
