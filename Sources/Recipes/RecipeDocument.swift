// A recipe's YAML composed into nodes that know their line, with the command-line overrides (`heal.steps=50`) set
// into the tree, and the one place an error about a dotted key gets its position: the key's line in the file
// ("Recipes/x.yaml:14: heal.steps: …"), or the override it came from. RecipeDecoder reads the tree into the recipe's
// types.
import Foundation
import Support
import Yams

/// The composed YAML of one recipe file and the overrides applied to it.
struct RecipeDocument {
    /// The file as the user named it (for messages).
    let file: String
    var root: Node
    /// The overrides applied (dotted key, text as given), in order, for messages about a value from the command line.
    var overridden: [(key: String, text: String)] = []

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
        overridden.append((key, text))
    }

    /// The last override that set `key` (dotted), or a mapping above it, as given.
    func override(of key: String) -> String? {
        overridden.last(where: { key == $0.key || key.hasPrefix($0.key + ".") })?.text
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

    /// The node written at `key` (dotted), nil when absent or null.
    func node(at key: String) -> Node? {
        let (node, written) = nearest(key)
        return written && node.null == nil ? node : nil
    }

    /// An error about `key` (dotted) at its line in the file: its value's, else that of the nearest mapping above it.
    func error(_ key: String, _ problem: String) -> PruneError { error(key, at: nearest(key).node, problem) }

    /// The node at `key` (dotted), or the nearest mapping above it where the key is not written.
    private func nearest(_ key: String) -> (node: Node, written: Bool) {
        var node = root
        for part in key.split(separator: ".") {
            guard case .mapping(let mapping) = node, let next = mapping[String(part)] else { return (node, false) }
            node = next
        }
        return (node, true)
    }
}
