// The dtype a GGUF file is written in, as a user names it (--dtype f32|f16|bf16|q8_0), and which ggml type each
// tensor gets under it, as convert_hf_to_gguf.py decides: 1-D tensors (norms, biases, rope factors) stay F32,
// matrices take the file's type, and Q8_0 falls back to F16 for a matrix whose rows are not a whole number of
// 32-element blocks. Its code is general.file_type (llama_ftype).
import Checkpoint
import Support

/// The dtype of a written GGUF file.
public enum GGUFFileType: String, CaseIterable, Sendable {
    case f32, f16, bf16, q8_0

    /// `text` (f32, f16, bf16, q8_0, or a long name that --dtype takes elsewhere: float32, float16, bfloat16…; any case);
    /// otherwise one refusal naming `what`.
    public static func parse(_ text: String, _ what: String = "--dtype") throws -> GGUFFileType {
        if text.lowercased() == "q8_0" { return .q8_0 }
        guard let dtype = try? SafetensorsDType.output(text, what), let name = dtype.outputName, let type = GGUFFileType(rawValue: name) else {
            throw PruneError(what, "\"\(text)\" is not one of f32, f16, bf16, q8_0")
        }
        return type
    }

    /// The type that keeps tensors stored as `dtype` exactly (F64 is narrowed to f32).
    public init(keeping dtype: SafetensorsDType) {
        switch dtype {
        case .BF16: self = .bf16
        case .F16: self = .f16
        default: self = .f32
        }
    }

    /// general.file_type: LLAMA_FTYPE_ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32.
    public var code: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .q8_0: 7
        case .bf16: 32
        }
    }

    /// The ggml type of a tensor of `shape` (row-major, last dimension the row) in a file of this type.
    public func tensorType(shape: [Int]) -> GGUFTensorType {
        guard shape.count >= 2 else { return .f32 }
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q8_0: return shape[shape.count - 1] % 32 == 0 ? .q8_0 : .f16
        }
    }
}
