// What a GGUF export wrote, for the command line to print: the file, its dtype, how many tensors of each ggml type,
// its size, and the matrices Q8_0 could not take (rows not a whole number of 32-element blocks: written F16).
import Foundation

/// A written GGUF file, summarised.
public struct GGUFExportReport: Encodable, Sendable {
    /// The file written.
    public var output: String
    /// "model" or "adapter".
    public var kind: String
    /// The --dtype in force (f32, f16, bf16, q8_0).
    public var dtype: String
    /// Tensors per ggml type name ("F32": 61).
    public var tensorTypes: [String: Int]
    /// Bytes of the file.
    public var bytes: Int
    /// Tensors written F16 in a q8_0 file because their rows are not whole 32-element blocks.
    public var keptF16: [String]

    /// Two lines of text: what was written, and the Q8_0 fallbacks when there are any.
    public var text: String {
        let types = tensorTypes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        var out = "wrote \(output) (\(kind), \(dtype): \(tensorTypes.values.reduce(0, +)) tensors: \(types); "
            + String(format: "%.1f MB", Double(bytes) / 1e6) + ")\n"
        if !keptF16.isEmpty {
            out += "kept F16 (rows not a multiple of 32, which q8_0 needs): \(keptF16.joined(separator: ", "))\n"
        }
        return out
    }

    init(output: URL, kind: String, fileType: GGUFFileType, items: [GGUFTensorItem]) {
        self.output = output.path
        self.kind = kind
        dtype = fileType.rawValue
        tensorTypes = Dictionary(items.map { ($0.type.name, 1) }, uniquingKeysWith: +)
        bytes = ((try? FileManager.default.attributesOfItem(atPath: output.path)[.size]) as? NSNumber)?.intValue ?? 0
        keptF16 = fileType == .q8_0 ? items.filter { $0.type == .f16 }.map(\.name) : []
    }
}
