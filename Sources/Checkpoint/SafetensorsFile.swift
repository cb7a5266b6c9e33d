// Reader for the safetensors format: 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data.
// Offsets are relative to the end of the header. Every claim in the header is checked before use.
import Foundation
import Support
import Tensor

/// Element types of the safetensors format.
public enum SafetensorsDType: String, CaseIterable, Sendable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL
    case F8_E4M3, F8_E5M2

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .F64, .I64, .U64: 8
        case .F32, .I32, .U32: 4
        case .F16, .BF16, .I16, .U16: 2
        case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: 1
        }
    }

    /// Whether this toolkit can read the values as Float32.
    public var isFloatingSupported: Bool { self == .F32 || self == .F16 || self == .BF16 || self == .F64 }
}

/// One tensor's header entry.
public struct SafetensorsEntry: Sendable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Byte range within the data section.
    public let begin: Int
    public let end: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A validated, memory-mapped safetensors file.
public final class SafetensorsFile: ResidentPages {
    /// Largest header we accept; real headers are kilobytes to a few megabytes.
    public static let maxHeaderBytes = 100 * 1024 * 1024

    public let url: URL
    /// Entries in data order.
    public let entries: [SafetensorsEntry]
    /// Entry by name.
    public let entryByName: [String: SafetensorsEntry]
    /// The `__metadata__` strings.
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    /// See `MappedFile.dropResidentPages`: the tensors stay readable.
    public func dropResidentPages() { file.dropResidentPages() }

    public init(url: URL) throws {
        self.url = url
        file = try MappedFile(url: url)
        guard file.size >= 8, let base = file.bytes else { throw PruneError(file: url, "truncated safetensors file (\(file.size) bytes, no header)") }
        let n = Int(exactly: base.loadUnaligned(as: UInt64.self).littleEndian) ?? Int.max
        guard n <= Self.maxHeaderBytes else { throw PruneError(file: url, "header length \(n) exceeds the \(Self.maxHeaderBytes)-byte limit") }
        guard n <= file.size - 8 else { throw PruneError(file: url, "truncated safetensors file: header claims \(n) bytes, file has \(file.size - 8) after the length") }
        dataStart = 8 + n
        let headerData = Data(bytes: base + 8, count: n)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw PruneError(file: url, "header is not valid JSON")
        }
        guard let dict = json as? [String: Any] else { throw PruneError(file: url, "header is not a JSON object") }
        let dataSize = file.size - dataStart
        var meta: [String: String] = [:]
        var list: [SafetensorsEntry] = []
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw PruneError(file: url, "__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw PruneError(file: url, "__metadata__ value for \"\(k)\" is not a string") }
                    meta[k] = s
                }
                continue
            }
            guard let e = value as? [String: Any] else { throw PruneError(file: url, "entry \"\(name)\" is not an object") }
            guard let ds = e["dtype"] as? String else { throw PruneError(file: url, "entry \"\(name)\" has no dtype") }
            guard let dtype = SafetensorsDType(rawValue: ds) else { throw PruneError(file: url, "entry \"\(name)\" has unknown dtype \"\(ds)\"") }
            guard let shapeAny = e["shape"] as? [Any], let shape = Self.integers(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw PruneError(file: url, "entry \"\(name)\" has a malformed shape")
            }
            guard let offAny = e["data_offsets"] as? [Any], let off = Self.integers(offAny), off.count == 2 else {
                throw PruneError(file: url, "entry \"\(name)\" has malformed data_offsets")
            }
            let (b, en) = (off[0], off[1])
            guard b >= 0, b <= en else { throw PruneError(file: url, "entry \"\(name)\" has data_offsets [\(b), \(en)] out of order") }
            guard en <= dataSize else {
                throw PruneError(file: url, "entry \"\(name)\" spans past the end of the file (ends at \(en), data section has \(dataSize) bytes; truncated?)")
            }
            var count = 1
            for d in shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw PruneError(file: url, "entry \"\(name)\" shape \(shape) overflows") }
                count = p
            }
            guard count.multipliedReportingOverflow(by: dtype.size).partialValue == en - b, !count.multipliedReportingOverflow(by: dtype.size).overflow else {
                throw PruneError(file: url, "entry \"\(name)\" shape \(shape) × \(dtype.rawValue) needs \(count * dtype.size) bytes but its span is \(en - b)")
            }
            list.append(SafetensorsEntry(name: name, dtype: dtype, shape: shape, begin: b, end: en))
        }
        list.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        for i in list.indices.dropFirst() where list[i].begin < list[i - 1].end {
            throw PruneError(file: url, "entries \"\(list[i - 1].name)\" and \"\(list[i].name)\" overlap")
        }
        entries = list
        entryByName = Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
        metadata = meta
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            // JSON integers only: 3.5 or true are malformed.
            // On Linux `0 is Bool` holds for NSNumber; JSON booleans are a distinct NSNumber subclass.
            guard let n = v as? NSNumber, type(of: n) == NSNumber.self, let i = Int(exactly: n.doubleValue) else { return nil }
            out.append(i)
        }
        return out
    }

    /// Bytes after the header (the tensor data section).
    public var dataBytes: Int { file.size - dataStart }

    /// Tensor names in data order.
    public var names: [String] { entries.map(\.name) }

    /// The raw bytes of one entry, inside the memory map: valid only while this object lives.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let e = entryByName[name] else { throw PruneError(file: url, "no tensor named \"\(name)\"") }
        // An empty file has no mapping; its only possible entries are empty ones.
        guard let base = file.bytes else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + dataStart + e.begin, count: e.end - e.begin)
    }

    /// The entry converted to Float32 (from F32, F16, BF16 or F64).
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entryByName[name] else { throw PruneError(file: url, "no tensor named \"\(name)\"") }
        guard e.dtype.isFloatingSupported else { throw PruneError(file: url, "tensor \"\(name)\" has dtype \(e.dtype.rawValue); only F32, F16, BF16 and F64 weights are supported") }
        let raw = try rawBytes(name)
        let t = Tensor(zeros: e.shape)
        let n = e.elementCount
        guard n > 0 else { return t }
        switch e.dtype {
        case .F32:
            // The data section need not be 4-byte aligned: copy bytes.
            UnsafeMutableRawPointer(t.data).copyMemory(from: raw.baseAddress!, byteCount: n * 4)
        case .BF16, .F16:
            let tmp = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
            defer { tmp.deallocate() }
            UnsafeMutableRawPointer(tmp).copyMemory(from: raw.baseAddress!, byteCount: n * 2)
            if e.dtype == .BF16 { Kernels.bf16ToF32(tmp, t.data, n) } else { Kernels.f16ToF32(tmp, t.data, n) }
        case .F64:
            for i in 0..<n { t.data[i] = Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        default:
            break
        }
        return t
    }
}
