// The ggml tensor types this toolkit writes and reads (ggml_type codes of ggml.h): F32, F16, BF16 and Q8_0.
// A type stores its elements in blocks along a row (ne[0]): one element per block for the float types, 32 for
// Q8_0, whose block is an f16 scale d followed by 32 signed bytes (34 bytes; value = d · q).

/// A ggml tensor type.
public enum GGUFTensorType: UInt32, CaseIterable, Sendable {
    case f32 = 0, f16 = 1, q8_0 = 8, bf16 = 30

    /// ggml's name ("F32", "Q8_0").
    public var name: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q8_0: "Q8_0"
        case .bf16: "BF16"
        }
    }

    /// Elements per block (QK8_0 = 32 for Q8_0).
    public var blockSize: Int { self == .q8_0 ? 32 : 1 }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q8_0: 34
        }
    }

    /// Bytes of a tensor of `elements` (a whole number of blocks), or nil when that does not hold or overflows.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elements / blockSize).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : bytes
    }
}
