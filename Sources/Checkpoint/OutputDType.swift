// The dtype a written checkpoint's floating-point tensors are stored in, as a user names it: one parser for the
// CLI (--dtype of cut, merge, finetune), recipes (cut.dtype, export.dtype) and finetune's options, one refusal.
import Support

extension SafetensorsDType {
    /// The names accepted for an output dtype, canonical name first.
    public static let outputNames: [(names: [String], dtype: SafetensorsDType)] = [
        (["f32", "fp32", "float32"], .F32), (["bf16", "bfloat16"], .BF16), (["f16", "fp16", "float16"], .F16),
    ]

    /// The short name of an output dtype (f32, bf16, f16); nil for a dtype no output is written in.
    public var outputName: String? { Self.outputNames.first { $0.dtype == self }?.names.first }

    /// `text` (f32, bf16, f16 or a long name: float32, bfloat16, float16, fp32, fp16; any case) as an output dtype;
    /// otherwise the one refusal, naming `what` (the flag or recipe key).
    public static func output(_ text: String, _ what: String = "--dtype") throws -> SafetensorsDType {
        let key = text.lowercased()
        guard let found = outputNames.first(where: { $0.names.contains(key) }) else {
            throw PruneError(what, "\"\(text)\" is not one of f32, bf16, f16")
        }
        return found.dtype
    }
}
