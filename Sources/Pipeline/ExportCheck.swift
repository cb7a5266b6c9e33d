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
        public var summary: String {
            String(format: "self-check: the merged files' logits are within %.2g of the model in memory (bound %.2g for %@)",
                   maxLogitDifference, bound, dtype)
        }
    }

    /// Relative bound on max |Δlogit| / max(1, max |logit|) for weights stored in each dtype: the rounding of
    /// W + scale·B·A to the stored precision, with a margin.
    static func relativeBound(_ dtype: String) -> Double {
        switch dtype {
        case "float16": return 2e-2
        case "bfloat16": return 8e-2
        default: return 1e-4
        }
    }

    /// Loads `merged` (its config, tensor shapes and layer count are validated by the load) and compares its
    /// logits on `tokens` with `model`'s. Throws, leaving a marker file, when they differ beyond the dtype's bound.
    public static func verify(merged: URL, against model: LlamaModel, tokens: [Int32], parallelism: Parallelism) throws -> Result {
        let probe = Array(tokens.prefix(32))
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
        return Result(maxLogitDifference: diff, bound: bound, dtype: dtype)
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
