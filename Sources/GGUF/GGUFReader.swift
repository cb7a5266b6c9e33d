// Reader of GGUF files (versions 2 and 3, the ones with 64-bit counts), for checking what was written and for
// refusing a malformed file with one line. Every claim of the header is checked before it is used: the magic and
// version, that counts and strings fit in the file, that strings are UTF-8, value types and keys (unique), the
// alignment (general.alignment, a power of two, default 32), and for each tensor: a unique name of at most 63
// bytes, 1–4 positive dimensions, a type this toolkit reads (F32, F16, BF16, Q8_0), rows of whole blocks, an
// aligned offset, and data inside the file, overlapping no other tensor.
import Foundation
import Support
import Tensor

/// A tensor's entry in the header.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    /// ggml's ne: the row length first (the reverse of `shape`).
    public let dimensions: [Int]
    public let type: GGUFTensorType
    /// Offset of its data from the start of the data section.
    public let offset: Int
    /// Bytes of its data.
    public let byteCount: Int

    /// Row-major shape (PyTorch's order).
    public var shape: [Int] { dimensions.reversed() }
    public var elementCount: Int { dimensions.reduce(1, *) }
}

/// A validated, memory-mapped GGUF file.
public final class GGUFReader {
    public let url: URL
    public let version: UInt32
    /// Key/value pairs in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// Tensor infos in header order.
    public let tensors: [GGUFTensorInfo]
    /// The data alignment in force.
    public let alignment: Int
    /// Absolute file offset of the data section.
    public let dataStart: Int
    private let valueOfKey: [String: GGUFValue]
    private let infoOfName: [String: GGUFTensorInfo]
    private let file: MappedFile

    /// Nested arrays deeper than this are refused (the format allows nesting; no real file goes past 2).
    static let maxArrayDepth = 4

    public init(url: URL) throws {
        self.url = url
        file = try MappedFile(url: url)
        var cursor = Cursor(base: file.bytes, size: file.size, url: url)
        guard try cursor.u32("the magic") == GGUFWriter.magic else { throw PruneError(file: url, "not a GGUF file (no \"GGUF\" magic)") }
        version = try cursor.u32("the version")
        guard version == 2 || version == 3 else { throw PruneError(file: url, "GGUF version \(version) is not supported (2 or 3)") }
        let tensorCount = try cursor.count("the tensor count", minimumBytesEach: 28)
        let keyCount = try cursor.count("the key/value count", minimumBytesEach: 13)
        var pairs: [(key: String, value: GGUFValue)] = []
        var values: [String: GGUFValue] = [:]
        for _ in 0..<keyCount {
            let key = try cursor.string("a metadata key")
            guard values[key] == nil else { throw PruneError(file: url, "metadata key \"\(key)\" appears twice") }
            let value = try cursor.value(of: try cursor.valueType(key), key: key, depth: 0)
            pairs.append((key, value))
            values[key] = value
        }
        metadata = pairs
        valueOfKey = values
        if let given = values["general.alignment"] {
            guard case .uint32(let a) = given, a > 0, a & (a - 1) == 0 else {
                throw PruneError(file: url, "general.alignment must be a uint32 power of two, got \(given)")
            }
            alignment = Int(a)
        } else {
            alignment = GGUFWriter.alignment
        }
        var infos: [GGUFTensorInfo] = []
        var names = Set<String>()
        for _ in 0..<tensorCount {
            let name = try cursor.string("a tensor name")
            guard name.utf8.count <= GGUFWriter.maxNameBytes else { throw PruneError(file: url, "tensor name \"\(name)\" is longer than 63 bytes") }
            guard names.insert(name).inserted else { throw PruneError(file: url, "tensor \"\(name)\" appears twice") }
            let n = try cursor.u32("the dimension count of \"\(name)\"")
            guard (1...UInt32(GGUFWriter.maxDimensions)).contains(n) else {
                throw PruneError(file: url, "tensor \"\(name)\" has \(n) dimensions (1 to 4 allowed)")
            }
            var dims: [Int] = []
            var elements = 1
            for _ in 0..<n {
                let d = try cursor.u64("a dimension of \"\(name)\"")
                guard d > 0, let di = Int(exactly: d), case let (p, false) = elements.multipliedReportingOverflow(by: di) else {
                    throw PruneError(file: url, "tensor \"\(name)\" has dimension \(d)")
                }
                dims.append(di)
                elements = p
            }
            let code = try cursor.u32("the type of \"\(name)\"")
            guard let type = GGUFTensorType(rawValue: code) else {
                throw PruneError(file: url, "tensor \"\(name)\" has ggml type \(code); only F32, F16, BF16 and Q8_0 are read")
            }
            guard dims[0] % type.blockSize == 0, let bytes = type.byteCount(elements: elements) else {
                throw PruneError(file: url, "tensor \"\(name)\" rows of \(dims[0]) are not whole \(type.name) blocks of \(type.blockSize)")
            }
            let offset = try cursor.u64("the offset of \"\(name)\"")
            guard let off = Int(exactly: offset), off % alignment == 0 else {
                throw PruneError(file: url, "tensor \"\(name)\" offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            infos.append(GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: off, byteCount: bytes))
        }
        dataStart = (cursor.position + alignment - 1) / alignment * alignment
        let dataBytes = max(file.size - dataStart, 0)
        for info in infos where info.offset > dataBytes || info.byteCount > dataBytes - info.offset {
            throw PruneError(file: url, "tensor \"\(info.name)\" data ends past the end of the file (truncated?)")
        }
        let ordered = infos.sorted { $0.offset < $1.offset }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw PruneError(file: url, "tensors \"\(a.name)\" and \"\(b.name)\" overlap")
        }
        tensors = infos
        infoOfName = Dictionary(uniqueKeysWithValues: infos.map { ($0.name, $0) })
    }

    /// The value of a key, if present.
    public func value(_ key: String) -> GGUFValue? { valueOfKey[key] }

    /// A tensor's header entry, if present.
    public func info(_ name: String) -> GGUFTensorInfo? { infoOfName[name] }

    /// A tensor's bytes inside the mapping (valid while the reader lives).
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let info = infoOfName[name], let base = file.bytes else { throw PruneError(file: url, "no tensor \"\(name)\"") }
        return UnsafeRawBufferPointer(start: base + dataStart + info.offset, count: info.byteCount)
    }

    /// A tensor decoded to Float32, in row-major `shape`.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = infoOfName[name] else { throw PruneError(file: url, "no tensor \"\(name)\"") }
        let raw = try rawBytes(name)
        let t = Tensor(zeros: info.shape)
        GGUFQuantization.decode(raw.baseAddress!, count: info.elementCount, as: info.type, into: t.data)
        return t
    }

    /// Bounds-checked little-endian reads through the header.
    struct Cursor {
        let base: UnsafeRawPointer?
        let size: Int
        let url: URL
        var position = 0

        mutating func bytes(_ n: Int, _ what: String) throws -> UnsafeRawPointer {
            guard n >= 0, n <= size - position, let base else {
                throw PruneError(file: url, "truncated: \(what) ends past the end of the file")
            }
            defer { position += n }
            return base + position
        }

        mutating func u32(_ what: String) throws -> UInt32 { UInt32(littleEndian: try bytes(4, what).loadUnaligned(as: UInt32.self)) }
        mutating func u64(_ what: String) throws -> UInt64 { UInt64(littleEndian: try bytes(8, what).loadUnaligned(as: UInt64.self)) }

        /// A u64 count of items that each take at least `minimumBytesEach` bytes: refused when they cannot fit.
        mutating func count(_ what: String, minimumBytesEach: Int) throws -> Int {
            let n = try u64(what)
            guard let c = Int(exactly: n), c <= (size - position) / minimumBytesEach else {
                throw PruneError(file: url, "\(what) \(n) cannot fit in the file")
            }
            return c
        }

        mutating func string(_ what: String) throws -> String {
            let n = try u64("the length of \(what)")
            guard let length = Int(exactly: n) else { throw PruneError(file: url, "truncated: \(what) ends past the end of the file") }
            let p = try bytes(length, what)
            guard let s = String(validating: UnsafeRawBufferPointer(start: p, count: length), as: UTF8.self) else {
                throw PruneError(file: url, "\(what) is not valid UTF-8")
            }
            return s
        }

        mutating func valueType(_ key: String) throws -> GGUFValueType {
            let code = try u32("the value type of \"\(key)\"")
            guard let type = GGUFValueType(rawValue: code) else { throw PruneError(file: url, "metadata \"\(key)\" has unknown value type \(code)") }
            return type
        }

        mutating func value(of type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
            let what = "the value of \"\(key)\""
            switch type {
            case .uint8: return .uint8(try bytes(1, what).load(as: UInt8.self))
            case .int8: return .int8(try bytes(1, what).load(as: Int8.self))
            case .uint16: return .uint16(UInt16(littleEndian: try bytes(2, what).loadUnaligned(as: UInt16.self)))
            case .int16: return .int16(Int16(littleEndian: try bytes(2, what).loadUnaligned(as: Int16.self)))
            case .uint32: return .uint32(try u32(what))
            case .int32: return .int32(Int32(bitPattern: try u32(what)))
            case .float32: return .float32(Float(bitPattern: try u32(what)))
            case .uint64: return .uint64(try u64(what))
            case .int64: return .int64(Int64(bitPattern: try u64(what)))
            case .float64: return .float64(Double(bitPattern: try u64(what)))
            case .bool:
                let b = try bytes(1, what).load(as: UInt8.self)
                guard b <= 1 else { throw PruneError(file: url, "metadata \"\(key)\" is a bool of value \(b)") }
                return .bool(b == 1)
            case .string: return .string(try string(what))
            case .array:
                guard depth < GGUFReader.maxArrayDepth else { throw PruneError(file: url, "metadata \"\(key)\" nests arrays too deeply") }
                let element = try valueType(key)
                let n = try count("the element count of \"\(key)\"", minimumBytesEach: element.fixedSize ?? 8)
                var items: [GGUFValue] = []
                items.reserveCapacity(n)
                for _ in 0..<n { items.append(try value(of: element, key: key, depth: depth + 1)) }
                return .array(element, items)
            }
        }
    }
}
