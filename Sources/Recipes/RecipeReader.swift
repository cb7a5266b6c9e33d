// Reading a recipe's YAML into typed values with the line of every key kept: Yams composes the text into
// nodes that know their line, and each mapping is read against the keys it may hold, so that an unknown key
// or a value of the wrong type is one error naming the file, the line and the dotted key
// ("Recipes/x.yaml:14: heal.steps: expected an integer, got \"many\""). Command-line overrides
// (`heal.steps=50`) are set into the node tree before it is read, and an error in one names the override.
import Foundation
import Support
import Yams

/// The composed YAML of one recipe file and the overrides applied to it.
struct RecipeDocument {
    /// The file as the user named it (for messages).
    let file: String
    var root: Node
    /// Dotted key → the override's text as given, for messages about a value that came from the command line.
    var overridden: [String: String] = [:]

    /// Composes `text` (an empty document is an empty mapping); a syntax error is one line with its position.
    init(text: String, file: String) throws {
        self.file = file
        do {
            root = try Yams.compose(yaml: text) ?? Node.mapping(Node.Mapping([]))
        } catch let error as YamlError {
            switch error {
            case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
                throw PruneError("\(file):\(mark.line)", "not valid YAML (column \(mark.column)): \(problem)")
            default:
                throw PruneError(file, "not valid YAML: \(Self.oneLine(error))")
            }
        }
    }

    /// The position and problem of a YAML syntax error, on one line.
    static func oneLine(_ error: YamlError) -> String {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)"
        default:
            return String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        }
    }

    /// Sets `key.path=value` (the value read as YAML: `50`, `true`, `[angular, bi]`, `out/run`).
    mutating func applyOverride(_ text: String) throws {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw PruneError("override \"\(text)\"", "expected key.path=value, e.g. heal.steps=50")
        }
        let key = String(text[..<eq]).trimmingCharacters(in: .whitespaces)
        let valueText = String(text[text.index(after: eq)...])
        let value: Node
        do {
            value = try Yams.compose(yaml: valueText) ?? Node("~")
        } catch let error as YamlError {
            throw PruneError("override \(text)", "the value is not valid YAML: \(Self.oneLine(error))")
        }
        let parts = key.split(separator: ".").map(String.init)
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else {
            throw PruneError("override \(text)", "\"\(key)\" is not a dotted key such as heal.steps")
        }
        func set(_ node: Node, _ rest: ArraySlice<String>, _ path: String) throws -> Node {
            guard let head = rest.first else { return value }
            var mapping: Node.Mapping
            switch node {
            case .mapping(let m): mapping = m
            case .scalar where node.null != nil: mapping = Node.Mapping([])
            default:
                throw PruneError("override \(text)", "\(path.isEmpty ? "the recipe" : path) is not a mapping, so it has no key \(head)")
            }
            let childPath = path.isEmpty ? head : path + "." + head
            let child = mapping[head] ?? Node.mapping(Node.Mapping([]))
            mapping[head] = try set(child, rest.dropFirst(), childPath)
            return .mapping(mapping)
        }
        root = try set(root, parts[...], "")
        overridden[key] = text
    }

    /// The override that set `key` (dotted), or a mapping above it, as given.
    func override(of key: String) -> String? {
        overridden.first(where: { key == $0.key || key.hasPrefix($0.key + ".") })?.value
    }

    /// Whether `key` (dotted) came from the command line rather than the file.
    func isOverridden(_ key: String) -> Bool { override(of: key) != nil }

    /// An error about `key` (dotted), at the line of `node` in the file, or naming the override it came from.
    func error(_ key: String, at node: Node?, _ problem: String) -> PruneError {
        if let given = override(of: key) {
            return PruneError("\(file) (override \(given))", "\(key): \(problem)")
        }
        if let line = node?.mark?.line { return PruneError("\(file):\(line)", "\(key): \(problem)") }
        return PruneError(file, "\(key): \(problem)")
    }

    /// The root mapping, read against `keys`.
    func rootReader(keys: [String]) throws -> RecipeMapping {
        try RecipeMapping(document: self, node: root, path: "", keys: keys)
    }
}

/// One mapping of a recipe, read key by key; every key it holds must be one of `keys`.
struct RecipeMapping {
    let document: RecipeDocument
    let node: Node
    /// Dotted path of this mapping ("" for the root).
    let path: String
    private var values: [String: (key: Node, value: Node)] = [:]

    init(document: RecipeDocument, node: Node, path: String, keys: [String]) throws {
        self.document = document
        self.node = node
        self.path = path
        guard case .mapping(let mapping) = node else {
            throw document.error(path.isEmpty ? "recipe" : path, at: node, "expected a mapping of keys (\(keys.joined(separator: ", ")))")
        }
        for (k, v) in mapping {
            guard let name = k.string else { throw document.error(path.isEmpty ? "recipe" : path, at: k, "a key must be a string") }
            guard keys.contains(name) else {
                throw document.error(dotted(name), at: k, "unknown key (expected one of: \(keys.joined(separator: ", ")))")
            }
            guard values[name] == nil else { throw document.error(dotted(name), at: k, "given twice") }
            values[name] = (k, v)
        }
    }

    func dotted(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// The value node of `key`, nil when absent or null.
    func node(_ key: String) -> Node? {
        guard let v = values[key]?.value else { return nil }
        if v.null != nil { return nil }
        return v
    }

    func fail(_ key: String, _ problem: String) -> PruneError {
        document.error(dotted(key), at: values[key]?.value ?? values[key]?.key ?? node, problem)
    }

    private func scalarText(_ v: Node) -> String {
        switch v {
        case .scalar(let s): return "\"\(s.string)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    func string(_ key: String) throws -> String? {
        guard let v = node(key) else { return nil }
        guard case .scalar(let s) = v else { throw fail(key, "expected a string, got \(scalarText(v))") }
        return s.string
    }

    func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else { throw fail(key, "is required") }
        return s
    }

    func int(_ key: String) throws -> Int? {
        guard let v = node(key) else { return nil }
        guard case .scalar(let s) = v, s.style == .plain, let i = v.int else { throw fail(key, "expected an integer, got \(scalarText(v))") }
        return i
    }

    func double(_ key: String) throws -> Double? {
        guard let v = node(key) else { return nil }
        guard case .scalar(let s) = v, s.style == .plain, let d = v.float ?? v.int.map(Double.init) else {
            throw fail(key, "expected a number, got \(scalarText(v))")
        }
        return d
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = node(key) else { return nil }
        guard case .scalar(let s) = v, s.style == .plain, let b = v.bool else { throw fail(key, "expected true or false, got \(scalarText(v))") }
        return b
    }

    /// A list of strings; a single scalar is taken as a list of one.
    func strings(_ key: String) throws -> [String]? {
        guard let v = node(key) else { return nil }
        switch v {
        case .scalar(let s): return [s.string]
        case .sequence(let seq):
            return try seq.map { item in
                guard case .scalar(let s) = item else { throw document.error(dotted(key), at: item, "expected a list of strings") }
                return s.string
            }
        case .mapping: throw fail(key, "expected a list, got a mapping")
        }
    }

    /// One of `choices` (an enum's raw values).
    func choice<E: RawRepresentable & CaseIterable>(_ key: String, _ type: E.Type) throws -> E? where E.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let e = E(rawValue: s) else {
            throw fail(key, "\"\(s)\" is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return e
    }

    /// The sub-mapping under `key`, nil when absent.
    func mapping(_ key: String, keys: [String]) throws -> RecipeMapping? {
        guard let v = node(key) else { return nil }
        return try RecipeMapping(document: document, node: v, path: dotted(key), keys: keys)
    }
}
