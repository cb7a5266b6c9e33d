// Writer of GGUF version 3 files (ggml docs/gguf.md). Layout, all little-endian:
//   "GGUF", u32 version 3, u64 tensor count, u64 key/value count,
//   each key/value: gguf string key, u32 value type, value (GGUFValue),
//   each tensor info: gguf string name, u32 dimension count, u64 dimensions (ne[0], the row length, first —
//   the reverse of PyTorch's shape), u32 ggml type, u64 offset of its data from the start of the data section,
//   zero padding to `alignment`, then the data section: each tensor's bytes at its offset, padded to `alignment`.
// general.alignment records the alignment (32, ggml's default). The header is built in memory; tensor data is
// produced, encoded and written one tensor at a time, so memory holds one tensor, not the model. The file is
// written under a temporary name and renamed into place (AtomicFile).
import Foundation
import Support
import Tensor

/// One tensor to write; its values are computed only when the file is written.
public struct GGUFTensorItem {
    /// The tensor's name in the file (at most 63 bytes, ggml's limit), e.g. "blk.0.attn_q.weight".
    public let name: String
    /// Row-major shape (PyTorch's order; the file stores it reversed).
    public let shape: [Int]
    public let type: GGUFTensorType
    /// Float32 values of `shape`, row-major.
    let values: () throws -> Tensor

    public init(name: String, shape: [Int], type: GGUFTensorType, values: @escaping () throws -> Tensor) {
        self.name = name
        self.shape = shape
        self.type = type
        self.values = values
    }

    /// Element count.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// Writes GGUF files.
public enum GGUFWriter {
    /// "GGUF" read as a little-endian u32.
    public static let magic: UInt32 = 0x4655_4747
    public static let version: UInt32 = 3
    /// Data alignment in bytes (ggml's GGUF_DEFAULT_ALIGNMENT), recorded as general.alignment.
    public static let alignment = 32
    /// ggml's GGML_MAX_NAME (64) less the terminating zero.
    public static let maxNameBytes = 63
    /// ggml's GGML_MAX_DIMS.
    public static let maxDimensions = 4

    /// Writes `metadata` (in this order, general.alignment first) and `tensors` (in this order) to `url` atomically.
    /// Refuses, naming `url`, duplicate keys or names, arrays of mixed element types, shapes ggml cannot hold and
    /// values the tensor's type cannot store.
    public static func write(metadata: [(key: String, value: GGUFValue)], tensors: [GGUFTensorItem], to url: URL) throws {
        let all = [(key: "general.alignment", value: GGUFValue.uint32(UInt32(alignment)))] + metadata
        var header: [UInt8] = []
        header.appendLittleEndian(magic)
        header.appendLittleEndian(version)
        header.appendLittleEndian(UInt64(tensors.count))
        header.appendLittleEndian(UInt64(all.count))
        var keys = Set<String>()
        for (key, value) in all {
            guard keys.insert(key).inserted else { throw PruneError(file: url, "metadata key \"\(key)\" given twice") }
            if case .array(let element, let items) = value {
                guard element != .array, items.allSatisfy({ $0.type == element }) else {
                    throw PruneError(file: url, "metadata array \"\(key)\" mixes element types")
                }
            }
            header.appendGGUFString(key)
            header.appendLittleEndian(value.type.rawValue)
            value.encode(into: &header)
        }
        var names = Set<String>()
        var offset = 0
        var sizes: [Int] = []
        for item in tensors {
            guard names.insert(item.name).inserted else { throw PruneError(file: url, "tensor \"\(item.name)\" given twice") }
            guard item.name.utf8.count <= maxNameBytes else {
                throw PruneError(file: url, "tensor name \"\(item.name)\" is longer than ggml's \(maxNameBytes) bytes")
            }
            guard (1...maxDimensions).contains(item.shape.count), item.shape.allSatisfy({ $0 > 0 }),
                  (item.shape.last ?? 0) % item.type.blockSize == 0, let bytes = item.type.byteCount(elements: item.elementCount) else {
                throw PruneError(file: url, "tensor \"\(item.name)\" of shape \(item.shape) cannot be stored as \(item.type.name)")
            }
            header.appendGGUFString(item.name)
            header.appendLittleEndian(UInt32(item.shape.count))
            for d in item.shape.reversed() { header.appendLittleEndian(UInt64(d)) }
            header.appendLittleEndian(item.type.rawValue)
            header.appendLittleEndian(UInt64(offset))
            sizes.append(bytes)
            offset += padded(bytes)
        }
        header.append(contentsOf: [UInt8](repeating: 0, count: padded(header.count) - header.count))

        try AtomicFile.write(to: url) { handle in
            try handle.write(contentsOf: Data(header))
            for (item, bytes) in zip(tensors, sizes) {
                let values = try item.values()
                guard values.shape == item.shape else {
                    throw PruneError(file: url, "tensor \"\(item.name)\": values have shape \(values.shape), expected \(item.shape)")
                }
                if let problem = GGUFQuantization.problem(values.data, count: values.count, as: item.type) {
                    throw PruneError(file: url, "tensor \"\(item.name)\" \(problem)")
                }
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: padded(bytes), alignment: 64)
                defer { buffer.deallocate() }
                GGUFQuantization.encode(values.data, count: values.count, as: item.type, into: buffer.baseAddress!)
                (buffer.baseAddress! + bytes).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - bytes)
                try handle.write(contentsOf: Data(bytesNoCopy: buffer.baseAddress!, count: buffer.count, deallocator: .none))
            }
        }
    }

    /// `n` rounded up to the alignment.
    static func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}
