// Writer for the safetensors format (F32, F16 or BF16 from Float32 tensors, or raw bytes copied as
// they are). Written to a temporary name beside the target, then renamed: a failure leaves no half file.
import Foundation
import Support
import Tensor

/// One tensor to write.
public struct SafetensorsItem {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Produces the item's bytes (exactly shape × dtype size) into the given buffer.
    let fill: (UnsafeMutableRawBufferPointer) throws -> Void

    /// A Float32 tensor stored as `dtype` (F32, F16 or BF16; rounding to nearest even).
    public init(name: String, tensor: Tensor, dtype: SafetensorsDType = .F32) {
        precondition(dtype == .F32 || dtype == .F16 || dtype == .BF16, "cannot write \(dtype) from Float32")
        self.name = name
        self.dtype = dtype
        self.shape = tensor.shape
        fill = { out in Self.store(tensor, as: dtype, into: out) }
    }

    /// A tensor of `shape` computed only when the file is written (`values` must return that shape), then stored
    /// as `dtype`: a shard of merged or converted tensors never holds more than one of them in Float32.
    public init(name: String, shape: [Int], dtype: SafetensorsDType, values: @escaping () throws -> Tensor) {
        precondition(dtype == .F32 || dtype == .F16 || dtype == .BF16, "cannot write \(dtype) from Float32")
        self.name = name
        self.dtype = dtype
        self.shape = shape
        fill = { out in
            let tensor = try values()
            guard tensor.shape == shape else {
                throw PruneError(name, "new values have shape \(tensor.shape), the tensor has \(shape)")
            }
            Self.store(tensor, as: dtype, into: out)
        }
    }

    private static func store(_ tensor: Tensor, as dtype: SafetensorsDType, into out: UnsafeMutableRawBufferPointer) {
        let n = tensor.count
        switch dtype {
        case .F32: out.baseAddress!.copyMemory(from: tensor.data, byteCount: n * 4)
        case .BF16: Kernels.f32ToBF16(tensor.data, out.baseAddress!.assumingMemoryBound(to: UInt16.self), n)
        default: Kernels.f32ToF16(tensor.data, out.baseAddress!.assumingMemoryBound(to: UInt16.self), n)
        }
    }

    /// Bytes copied verbatim (e.g. a tensor kept in its original dtype).
    public init(name: String, dtype: SafetensorsDType, shape: [Int], bytes: UnsafeRawBufferPointer) {
        precondition(shape.reduce(1, *) * dtype.size == bytes.count, "byte count does not match shape for \(name)")
        self.name = name
        self.dtype = dtype
        self.shape = shape
        fill = { out in if bytes.count > 0 { out.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) } }
    }

    /// Bytes produced when the file is written, by `fill` (exactly shape × dtype size of them): a large checkpoint
    /// streams tensor by tensor without ever holding them all.
    public init(name: String, dtype: SafetensorsDType, shape: [Int], fill: @escaping (UnsafeMutableRawBufferPointer) -> Void) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.fill = fill
    }

    /// Bytes the item occupies in the file.
    public var byteCount: Int { shape.reduce(1, *) * dtype.size }
}

/// Writes safetensors files.
public enum SafetensorsWriter {
    /// Writes `items` in order with `metadata` (`format: pt` is added when absent, as transformers expects).
    /// `durable` flushes the file to disk before it is renamed into place.
    public static func write(_ items: [SafetensorsItem], metadata: [String: String] = [:], to url: URL,
                             durable: Bool = false) throws {
        var meta = metadata
        if meta["format"] == nil { meta["format"] = "pt" }
        var seen = Set<String>()
        var header = "{\"__metadata__\":{"
        header += meta.sorted { $0.key < $1.key }.map { "\(JSONText.quoted($0.key)):\(JSONText.quoted($0.value))" }.joined(separator: ",")
        header += "}"
        var offset = 0
        for item in items {
            guard seen.insert(item.name).inserted else { throw PruneError(file: url, "duplicate tensor name \"\(item.name)\"") }
            let shape = item.shape.map(String.init).joined(separator: ",")
            header += ",\(JSONText.quoted(item.name)):{\"dtype\":\"\(item.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + item.byteCount)]}"
            offset += item.byteCount
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        // Pad with spaces so the data section starts 8-byte aligned (as the reference writer does).
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }

        try AtomicFile.write(to: url, durable: durable) { handle in
            var len = UInt64(headerBytes.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &len, count: 8))
            try handle.write(contentsOf: Data(headerBytes))
            // Stream item by item, so memory stays bounded by the largest tensor.
            for item in items where item.byteCount > 0 {
                let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: item.byteCount, alignment: 64)
                defer { buf.deallocate() }
                try item.fill(buf)
                try handle.write(contentsOf: Data(bytesNoCopy: buf.baseAddress!, count: item.byteCount, deallocator: .none))
            }
        }
    }
}
