// The values a chat template computes with, behaving as the Python objects Jinja would hold:
// Python truthiness, equality (1 == 1.0 == True), str() and repr() output, and Jinja's Undefined
// (prints as "", is false, fails when used in arithmetic or looked into).
import Foundation

extension ChatTemplate {
    /// A Jinja/Python value.
    enum Value {
        /// A missing variable, key or attribute; `name` says which, for error messages.
        case undefined(name: String)
        case none
        case bool(Bool)
        case int(Int)
        case double(Double)
        case string(String)
        case list([Value])
        case dict(Dictionary)
        /// `namespace(...)`: the one mutable object, so `set ns.x = …` inside a loop is seen after it.
        case namespace(Namespace)

        /// An insertion-ordered string-keyed mapping (Python dicts keep order, templates print them).
        struct Dictionary {
            private(set) var keys: [String] = []
            private var storage: [String: Value] = [:]

            init(_ pairs: [(String, Value)] = []) {
                for (key, value) in pairs { self[key] = value }
            }

            subscript(key: String) -> Value? {
                get { storage[key] }
                set {
                    if storage[key] == nil, newValue != nil { keys.append(key) }
                    if newValue == nil { keys.removeAll { $0 == key } }
                    storage[key] = newValue
                }
            }

            var pairs: [(String, Value)] { keys.map { ($0, storage[$0]!) } }
            var count: Int { keys.count }
        }

        final class Namespace {
            var attributes: Dictionary
            init(_ attributes: Dictionary) { self.attributes = attributes }
        }

        var isUndefined: Bool { if case .undefined = self { return true } else { return false } }

        /// Python's bool().
        var isTruthy: Bool {
            switch self {
            case .undefined, .none: return false
            case .bool(let value): return value
            case .int(let value): return value != 0
            case .double(let value): return value != 0
            case .string(let value): return !value.isEmpty
            case .list(let value): return !value.isEmpty
            case .dict(let value): return value.count > 0
            case .namespace: return true
            }
        }

        /// Python's str(), as `{{ }}` prints it.
        var text: String {
            switch self {
            case .undefined: return ""
            case .string(let value): return value
            default: return repr
            }
        }

        /// Python's repr(), used inside printed lists and dicts.
        var repr: String {
            switch self {
            case .undefined: return ""
            case .none: return "None"
            case .bool(let value): return value ? "True" : "False"
            case .int(let value): return String(value)
            case .double(let value): return Self.pythonFloat(value)
            case .string(let value): return Self.pythonStringRepr(value)
            case .list(let values): return "[" + values.map(\.repr).joined(separator: ", ") + "]"
            case .dict(let dict):
                return "{" + dict.pairs.map { Self.pythonStringRepr($0.0) + ": " + $0.1.repr }.joined(separator: ", ") + "}"
            case .namespace(let namespace):
                return "<Namespace " + Value.dict(namespace.attributes).repr + ">"
            }
        }

        /// The number as a Double, for mixed int/float arithmetic and comparison (bool counts as int).
        var number: Double? {
            switch self {
            case .bool(let value): return value ? 1 : 0
            case .int(let value): return Double(value)
            case .double(let value): return value
            default: return nil
            }
        }

        /// The exact integer, for int-only operations (bool counts as int, as in Python).
        var integer: Int? {
            switch self {
            case .bool(let value): return value ? 1 : 0
            case .int(let value): return value
            default: return nil
            }
        }

        /// A short name of the type, for error messages.
        var typeName: String {
            switch self {
            case .undefined(let name): return "undefined '\(name)'"
            case .none: return "None"
            case .bool: return "bool"
            case .int: return "int"
            case .double: return "float"
            case .string: return "str"
            case .list: return "list"
            case .dict: return "dict"
            case .namespace: return "namespace"
            }
        }

        private static func pythonFloat(_ value: Double) -> String {
            if value.isNaN { return "nan" }
            if value.isInfinite { return value < 0 ? "-inf" : "inf" }
            // Swift's shortest round-trip form matches Python's repr, except Python spells 1e16 "1e+16".
            var text = "\(value)"
            if let e = text.firstIndex(of: "e"), text[text.index(after: e)] != "-", text[text.index(after: e)] != "+" {
                text.insert("+", at: text.index(after: e))
            }
            return text
        }

        private static func pythonStringRepr(_ value: String) -> String {
            let quote: Character = value.contains("'") && !value.contains("\"") ? "\"" : "'"
            var out = String(quote)
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if Character(scalar) == quote {
                        out += "\\" + String(quote)
                    } else if scalar.value < 0x20 || scalar.value == 0x7F {
                        out += String(format: "\\x%02x", scalar.value)
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            out.append(quote)
            return out
        }
    }
}

extension ChatTemplate.Value: Equatable {
    /// Python's ==: numbers compare by value across int, float and bool; Undefined equals Undefined.
    static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.list(a), .list(b)): return a == b
        case let (.dict(a), .dict(b)):
            return a.count == b.count && a.pairs.allSatisfy { key, value in b[key] == value }
        case let (.namespace(a), .namespace(b)): return a === b
        default:
            if let a = lhs.number, let b = rhs.number { return a == b }
            return false
        }
    }
}
