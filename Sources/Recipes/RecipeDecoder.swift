// A Decoder over a RecipeDocument's nodes, so that the recipe's types decode with their own CodingKeys and every
// refusal is one line naming the file, the line and the dotted key ("Recipes/x.yaml:14: heal.steps: expected an
// integer, got \"many\""). The keys a type asks for are its known keys: once it has decoded, a key written in its
// mapping but never asked for is refused as unknown. Values are YAML scalars: integers, numbers and booleans
// unquoted, a string any scalar, an enum one of its raw values; a list may be written as its one item; null is
// absent. A RecipeSection takes its init()'s value for every key it does not write.
import Foundation
import Support
import Yams

/// A section of a recipe whose every key has a default.
protocol RecipeSection: Codable {
    init()
}

/// Decodes one value of a recipe (a scalar is its own single-value container).
struct RecipeDecoder: Decoder, SingleValueDecodingContainer {
    let document: RecipeDocument
    /// The value decoded: as written, or for a section its defaults with what is written over them.
    let node: Node
    /// The keys of the mapping as written, each of which must be asked for.
    let writtenKeys: [Node]
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// The keys asked for by this value's containers, in order (a class: containers are copies).
    private let asked = AskedKeys()
    private final class AskedKeys { var names: [String] = [] }

    /// A value of `type` from the document's root.
    static func decode<T: Decodable>(_ type: T.Type, from document: RecipeDocument) throws -> T {
        try RecipeDecoder(document: document, node: document.root, written: document.root, codingPath: []).decode(type)
    }

    private init(document: RecipeDocument, node: Node, written: Node?, codingPath: [CodingKey]) {
        (self.document, self.node, self.codingPath) = (document, node, codingPath)
        writtenKeys = written?.mapping.map { Array($0.keys) } ?? []
    }

    /// The decoder of `written` (nil: not written, for a section) under `key`, as a `type`.
    func child<T>(_ key: CodingKey, _ written: Node?, as type: T.Type) throws -> RecipeDecoder {
        var node = written ?? Node("~")
        if let section = type as? any RecipeSection.Type, written == nil || written?.mapping != nil {
            var merged = try Yams.compose(yaml: YAMLEncoder().encode(section.init()))?.mapping ?? [:]
            for (key, value) in written?.mapping ?? [:] where value.null == nil { if let name = key.string { merged[name] = value } }
            merged.mark = written?.mark
            node = .mapping(merged)
        }
        return RecipeDecoder(document: document, node: node, written: written, codingPath: codingPath + [key])
    }

    /// This value as a `type`; when it has decoded, every key written in its mapping must have been asked for.
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if let value = try scalar(type) { return value }
        // Other scalar types would come back here through singleValueContainer().
        guard !(type is LosslessStringConvertible.Type) else { throw fail("a \(type) is not read from recipes") }
        let value = try T(from: self)
        for key in writtenKeys where !asked.names.isEmpty && !asked.names.contains(key.string ?? "") {
            throw document.error(Self.dotted(codingPath + [PathKey(stringValue: key.string ?? "")]), at: key,
                                 "unknown key (expected one of: \(asked.names.joined(separator: ", ")))")
        }
        return value
    }

    func ask(_ key: CodingKey) { if !asked.names.contains(key.stringValue) { asked.names.append(key.stringValue) } }

    /// The dotted key of `path` ("recipe" for the root); list positions are not part of it.
    static func dotted(_ path: [CodingKey]) -> String {
        let names = path.filter { $0.intValue == nil }.map(\.stringValue)
        return names.isEmpty ? "recipe" : names.joined(separator: ".")
    }

    func fail(_ problem: String) -> PruneError { document.error(Self.dotted(codingPath), at: node, problem) }

    /// How a value that is not what was expected reads in a message.
    static func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return "\"\(s.string)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    /// This value as one of the scalar types recipes use; nil for any other type (an enum's value checked first).
    private func scalar<T>(_ type: T.Type) throws -> T? {
        switch type {
        case is String.Type:
            guard case .scalar(let s) = node else { throw fail("expected a string, got \(Self.describe(node))") }
            return s.string as? T
        case is Int.Type: return try plain("an integer") { $0.int } as? T
        case is Double.Type: return try plain("a number") { $0.float ?? $0.int.map(Double.init) } as? T
        case is Bool.Type: return try plain("true or false") { $0.bool } as? T
        case is UInt64.Type:
            let value = try plain("an integer") { $0.int }
            guard value >= 0 else { throw fail("must be ≥ 0, got \(value)") }
            return UInt64(value) as? T
        default:
            guard let choices = type as? any (CaseIterable & RawRepresentable).Type else { return nil }
            let names = Self.names(choices)
            let allowed = names.count == 2 ? "\(names[0]) or \(names[1])" : "one of \(names.joined(separator: ", "))"
            guard case .scalar(let s) = node else { throw fail("expected \(allowed), got \(Self.describe(node))") }
            guard names.contains(s.string) else { throw fail("\"\(s.string)\" is not \(allowed)") }
            return nil
        }
    }

    /// An unquoted scalar that `read` accepts.
    private func plain<V>(_ expected: String, _ read: (Node) -> V?) throws -> V {
        guard case .scalar(let s) = node, s.style == .plain, let value = read(node) else {
            throw fail("expected \(expected), got \(Self.describe(node))")
        }
        return value
    }

    private static func names<E: CaseIterable & RawRepresentable>(_: E.Type) -> [String] { E.allCases.map { "\($0.rawValue)" } }

    // MARK: containers

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .mapping(let mapping) = node else { throw fail("expected a mapping, got \(Self.describe(node))") }
        var seen = Set<String>()
        for key in writtenKeys {
            guard let name = key.string else { throw document.error(Self.dotted(codingPath), at: key, "a key must be a string") }
            guard seen.insert(name).inserted else { throw document.error(Self.dotted(codingPath + [PathKey(stringValue: name)]), at: key, "given twice") }
        }
        return KeyedDecodingContainer(MappingContainer(decoder: self, mapping: mapping))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        switch node {
        case .sequence(let items): return ListContainer(decoder: self, items: Array(items))
        case .scalar: return ListContainer(decoder: self, items: [node])
        case .mapping: throw fail("expected a list, got a mapping")
        }
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { self }
    func decodeNil() -> Bool { node.null != nil }

    /// Recipe types decode each section as its own type: nested containers and super decoders are not needed.
    func refuseNesting() -> PruneError { fail("nested containers are not read from recipes") }
}

/// A key in a path: a mapping's key, or a list's position.
private struct PathKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(stringValue: String) { (self.stringValue, intValue) = (stringValue, nil) }
    init(intValue: Int) { (stringValue, self.intValue) = ("\(intValue)", intValue) }
}

private struct MappingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: RecipeDecoder
    let mapping: Node.Mapping
    var codingPath: [CodingKey] { decoder.codingPath }
    var allKeys: [Key] { mapping.keys.compactMap { $0.string.flatMap(Key.init(stringValue:)) } }

    /// The value of `key` (nil when absent or null), which the type now knows.
    private func value(_ key: Key) -> Node? {
        decoder.ask(key)
        return mapping[key.stringValue].flatMap { $0.null == nil ? $0 : nil }
    }

    func contains(_ key: Key) -> Bool { value(key) != nil }
    func decodeNil(forKey key: Key) throws -> Bool { value(key) == nil }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let written = value(key)
        guard written != nil || type is any RecipeSection.Type else {
            throw decoder.document.error(RecipeDecoder.dotted(codingPath + [key]), at: decoder.node, "is required")
        }
        return try decoder.child(key, written, as: type).decode(type)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try value(key).map { try decoder.child(key, $0, as: type).decode(type) }
    }

    func nestedContainer<K: CodingKey>(keyedBy type: K.Type, forKey key: Key) throws -> KeyedDecodingContainer<K> { throw decoder.refuseNesting() }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { throw decoder.refuseNesting() }
    func superDecoder() throws -> Decoder { throw decoder.refuseNesting() }
    func superDecoder(forKey key: Key) throws -> Decoder { throw decoder.refuseNesting() }
}

private struct ListContainer: UnkeyedDecodingContainer {
    let decoder: RecipeDecoder
    let items: [Node]
    var currentIndex = 0
    var codingPath: [CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex].null != nil else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard !isAtEnd else { throw decoder.fail("has too few items") }
        defer { currentIndex += 1 }
        return try decoder.child(PathKey(intValue: currentIndex), items[currentIndex], as: type).decode(type)
    }

    mutating func nestedContainer<K: CodingKey>(keyedBy type: K.Type) throws -> KeyedDecodingContainer<K> { throw decoder.refuseNesting() }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { throw decoder.refuseNesting() }
    mutating func superDecoder() throws -> Decoder { throw decoder.refuseNesting() }
}
