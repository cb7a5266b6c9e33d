// GGUF metadata values (ggml docs/gguf.md, version 3): thirteen value types, each tagged by a u32 code and stored
// little-endian; a string is a u64 byte count then its UTF-8 bytes (no terminator); an array is its element type,
// a u64 count, then the elements (arrays of arrays are allowed by the spec but never written here).

/// The type code of a metadata value (gguf_metadata_value_type).
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7, string = 8
    case array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of one value of a fixed-size type; nil for strings and arrays.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }
}

/// One metadata value.
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32), float32(Float)
    case bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// Elements all of `GGUFValueType` (checked when written).
    indirect case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        case .array: .array
        }
    }

    /// An array of strings.
    public static func strings(_ values: [String]) -> GGUFValue { .array(.string, values.map { .string($0) }) }
    /// An array of float32.
    public static func floats(_ values: [Float]) -> GGUFValue { .array(.float32, values.map { .float32($0) }) }
    /// An array of int32.
    public static func int32s(_ values: [Int32]) -> GGUFValue { .array(.int32, values.map { .int32($0) }) }

    /// The string, when this is one.
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }

    /// An unsigned or non-negative signed integer of any width as Int; nil otherwise.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// float32 or float64 as Double; nil otherwise.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: nil
        }
    }

    /// The elements, when this is an array.
    public var arrayValue: [GGUFValue]? { if case .array(_, let items) = self { items } else { nil } }

    /// Appends the value's bytes (without its type code, which precedes it in a key/value pair).
    func encode(into out: inout [UInt8]) {
        switch self {
        case .uint8(let v): out.append(v)
        case .int8(let v): out.append(UInt8(bitPattern: v))
        case .uint16(let v): out.appendLittleEndian(v)
        case .int16(let v): out.appendLittleEndian(UInt16(bitPattern: v))
        case .uint32(let v): out.appendLittleEndian(v)
        case .int32(let v): out.appendLittleEndian(UInt32(bitPattern: v))
        case .float32(let v): out.appendLittleEndian(v.bitPattern)
        case .bool(let v): out.append(v ? 1 : 0)
        case .string(let s): out.appendGGUFString(s)
        case .uint64(let v): out.appendLittleEndian(v)
        case .int64(let v): out.appendLittleEndian(UInt64(bitPattern: v))
        case .float64(let v): out.appendLittleEndian(v.bitPattern)
        case .array(let element, let items):
            out.appendLittleEndian(element.rawValue)
            out.appendLittleEndian(UInt64(items.count))
            for item in items { item.encode(into: &out) }
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends an unsigned integer in little-endian byte order.
    mutating func appendLittleEndian<T: FixedWidthInteger & UnsignedInteger>(_ value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }

    /// Appends a gguf_string_t: u64 byte count, then the UTF-8 bytes.
    mutating func appendGGUFString(_ s: String) {
        appendLittleEndian(UInt64(s.utf8.count))
        append(contentsOf: s.utf8)
    }
}
