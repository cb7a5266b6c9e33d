// Renders a parsed chat template. Scoping follows Jinja: each for-loop iteration gets a fresh scope
// (a `set` inside a loop is gone after the iteration), `if` makes none, and namespaces are shared
// objects so `set ns.x` survives loops. Filters, tests, functions and methods are the documented
// subset in ChatTemplate.swift; anything else is an error naming it.
import Foundation

extension ChatTemplate {
    struct Evaluator {
        /// Innermost scope last.
        private var scopes: [[String: Value]]
        private var output = ""
        /// Statement lists and statements run so far (see `maxSteps`).
        private var steps = 0

        /// Statement lists (every loop iteration runs one, even an empty body) and statements a render may
        /// run: a template that loops 10⁵ × 10⁵ times is an error, not a hang (a real chat template takes
        /// about twenty per message).
        static let maxSteps = 200_000
        /// Longest output, string or list a render may build (characters or items).
        static let maxLength = 16 << 20

        /// How a statement list ended: normally, or by `break` / `continue` inside a loop.
        private enum Flow { case normal, breakLoop, continueLoop }

        init(globals: [String: Value]) { scopes = [globals] }

        /// The text of `nodes` rendered in the given globals.
        static func render(_ nodes: [Node], globals: [String: Value]) throws -> String {
            var evaluator = Evaluator(globals: globals)
            if try evaluator.run(nodes) != .normal { throw ChatTemplate.error("{% break %} or {% continue %} outside a loop") }
            return evaluator.output
        }

        // MARK: statements

        private mutating func run(_ nodes: [Node]) throws -> Flow {
            steps += 1
            guard steps <= Self.maxSteps else { throw ChatTemplate.error("the template runs more than \(Self.maxSteps) steps") }
            for node in nodes {
                steps += 1
                guard steps <= Self.maxSteps else { throw ChatTemplate.error("the template runs more than \(Self.maxSteps) steps") }
                if output.utf8.count > Self.maxLength { throw ChatTemplate.error("the template renders more than \(Self.maxLength) bytes") }
                switch node {
                case .text(let text):
                    output += text
                case .output(let expression):
                    output += try evaluate(expression).text
                case let .ifBlock(branches, otherwise):
                    var taken: [Node] = otherwise
                    for (condition, body) in branches where try evaluate(condition).isTruthy {
                        taken = body
                        break
                    }
                    let flow = try run(taken)
                    if flow != .normal { return flow }
                case let .forLoop(targets, iterable, filter, body, otherwise):
                    try runLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise)
                case let .set(name, attribute, expression):
                    let value = try evaluate(expression)
                    if let attribute {
                        guard case .namespace(let namespace) = lookup(name) else {
                            throw ChatTemplate.error("{% set \(name).\(attribute) %} needs \(name) to be a namespace()")
                        }
                        namespace.attributes[attribute] = value
                    } else {
                        scopes[scopes.count - 1][name] = value
                    }
                case .breakLoop:
                    return .breakLoop
                case .continueLoop:
                    return .continueLoop
                }
            }
            return .normal
        }

        private mutating func runLoop(targets: [String], iterable: Expression, filter: Expression?,
                                      body: [Node], otherwise: [Node]) throws {
            var items = try iterate(evaluate(iterable))
            if let filter {
                // The loop filter sees each item bound to the loop names, and shapes loop.index & co.
                items = try items.filter { item in
                    scopes.append(try bind(targets, to: item))
                    defer { scopes.removeLast() }
                    return try evaluate(filter).isTruthy
                }
            }
            if items.isEmpty {
                _ = try run(otherwise)
                return
            }
            for (position, item) in items.enumerated() {
                var scope = try bind(targets, to: item)
                scope["loop"] = .dict(Value.Dictionary([
                    ("index", .int(position + 1)), ("index0", .int(position)),
                    ("revindex", .int(items.count - position)), ("revindex0", .int(items.count - position - 1)),
                    ("first", .bool(position == 0)), ("last", .bool(position == items.count - 1)),
                    ("length", .int(items.count)),
                    ("previtem", position > 0 ? items[position - 1] : .undefined(name: "loop.previtem")),
                    ("nextitem", position + 1 < items.count ? items[position + 1] : .undefined(name: "loop.nextitem")),
                ]))
                scopes.append(scope)
                let flow = try run(body)
                scopes.removeLast()
                if flow == .breakLoop { break }
            }
        }

        /// The loop scope for one item: `for x in …` binds x; `for k, v in …` unpacks a pair.
        private func bind(_ targets: [String], to item: Value) throws -> [String: Value] {
            if targets.count == 1 { return [targets[0]: item] }
            let parts = try iterate(item)
            guard parts.count == targets.count else {
                throw ChatTemplate.error("cannot unpack \(parts.count) values into \(targets.joined(separator: ", "))")
            }
            return Swift.Dictionary(uniqueKeysWithValues: zip(targets, parts))
        }

        private func lookup(_ name: String) -> Value {
            for scope in scopes.reversed() {
                if let value = scope[name] { return value }
            }
            return .undefined(name: name)
        }

        // MARK: expressions

        private func evaluate(_ expression: Expression) throws -> Value {
            switch expression {
            case .literal(let value):
                return value
            case .name(let name):
                return lookup(name)
            case let .attribute(base, name):
                return try attribute(of: evaluate(base), name)
            case let .index(base, index):
                return try item(of: evaluate(base), evaluate(index))
            case let .slice(base, start, stop, step):
                return try slice(evaluate(base), start: start.map(evaluate), stop: stop.map(evaluate), step: step.map(evaluate))
            case let .call(callee, arguments, keywords):
                let values = try arguments.map(evaluate)
                let named = try keywords.map { ($0.0, try evaluate($0.1)) }
                if case let .attribute(base, method) = callee {
                    return try callMethod(method, on: evaluate(base), values)
                }
                if case .name(let function) = callee, lookup(function).isUndefined {
                    return try callGlobal(function, values, named)
                }
                throw ChatTemplate.error("unsupported: calling \(try evaluate(callee).typeName)")
            case let .filter(base, name, arguments, keywords):
                return try applyFilter(name, to: evaluate(base), arguments.map(evaluate),
                                       keywords.map { ($0.0, try evaluate($0.1)) })
            case let .test(base, name, arguments, negated):
                return .bool(try applyTest(name, to: evaluate(base), arguments.map(evaluate)) != negated)
            case .negate(let operand):
                let value = try evaluate(operand)
                if case .double(let number) = value { return .double(-number) }
                guard let integer = value.integer else { throw ChatTemplate.error("cannot negate \(value.typeName)") }
                return .int(-integer)
            case .plus(let operand):
                let value = try evaluate(operand)
                guard value.number != nil else { throw ChatTemplate.error("unary + on \(value.typeName)") }
                return value
            case .not(let operand):
                return .bool(!(try evaluate(operand).isTruthy))
            case let .and(left, right):
                let value = try evaluate(left)
                return value.isTruthy ? try evaluate(right) : value
            case let .or(left, right):
                let value = try evaluate(left)
                return value.isTruthy ? value : try evaluate(right)
            case let .binary(op, left, right):
                return try binary(op, evaluate(left), evaluate(right))
            case let .compare(first, rest):
                var left = try evaluate(first)
                for (op, operand) in rest {
                    let right = try evaluate(operand)
                    guard try compare(op, left, right) else { return .bool(false) }
                    left = right
                }
                return .bool(true)
            case let .conditional(condition, then, otherwise):
                if try evaluate(condition).isTruthy { return try evaluate(then) }
                return try otherwise.map(evaluate) ?? .undefined(name: "conditional without else")
            case .list(let items):
                return .list(try items.map(evaluate))
            case .dict(let pairs):
                var dict = Value.Dictionary()
                for (key, value) in pairs {
                    guard case .string(let name) = try evaluate(key) else {
                        throw ChatTemplate.error("unsupported: dict keys other than strings")
                    }
                    dict[name] = try evaluate(value)
                }
                return .dict(dict)
            }
        }

        /// `a.b`: a dict's item or a namespace's attribute (Jinja tries both).
        private func attribute(of base: Value, _ name: String) throws -> Value {
            switch base {
            case .undefined(let missing): throw ChatTemplate.error("'\(missing)' is undefined")
            case .dict(let dict): return dict[name] ?? .undefined(name: name)
            case .namespace(let namespace): return namespace.attributes[name] ?? .undefined(name: name)
            default: return .undefined(name: name)
            }
        }

        /// `a[i]`: list/string index (negative from the end) or dict key; missing gives Undefined.
        private func item(of base: Value, _ index: Value) throws -> Value {
            switch (base, index) {
            case (.undefined(let missing), _):
                throw ChatTemplate.error("'\(missing)' is undefined")
            case let (.dict(dict), .string(key)):
                return dict[key] ?? .undefined(name: key)
            case let (.namespace(namespace), .string(key)):
                return namespace.attributes[key] ?? .undefined(name: key)
            case let (.list(items), _):
                guard let i = index.integer else { throw ChatTemplate.error("list index must be an integer") }
                let position = i < 0 ? items.count + i : i
                return items.indices.contains(position) ? items[position] : .undefined(name: "[\(i)]")
            case let (.string(text), _):
                guard let i = index.integer else { throw ChatTemplate.error("string index must be an integer") }
                let scalars = Array(text.unicodeScalars)
                let position = i < 0 ? scalars.count + i : i
                return scalars.indices.contains(position) ? .string(String(scalars[position])) : .undefined(name: "[\(i)]")
            default:
                return .undefined(name: "[\(index.repr)]")
            }
        }

        /// Python slicing of lists and strings.
        private func slice(_ base: Value, start: Value?, stop: Value?, step: Value?) throws -> Value {
            func bound(_ value: Value?) throws -> Int? {
                guard let value, !(value == .none) else { return nil }
                guard let integer = value.integer else { throw ChatTemplate.error("slice bounds must be integers") }
                return integer
            }
            let step = try bound(step) ?? 1
            guard step != 0 else { throw ChatTemplate.error("slice step cannot be zero") }
            func indices(count: Int) throws -> [Int] {
                func clamp(_ value: Int?, _ fallback: Int) -> Int {
                    guard var value else { return fallback }
                    if value < 0 { value += count }
                    return step > 0 ? min(max(value, 0), count) : min(max(value, -1), count - 1)
                }
                let first = clamp(try bound(start), step > 0 ? 0 : count - 1)
                let end = clamp(try bound(stop), step > 0 ? count : -1)
                return Array(stride(from: first, to: end, by: step))
            }
            switch base {
            case .list(let items):
                return .list(try indices(count: items.count).map { items[$0] })
            case .string(let text):
                let scalars = Array(text.unicodeScalars)
                var out = String.UnicodeScalarView()
                for i in try indices(count: scalars.count) { out.append(scalars[i]) }
                return .string(String(out))
            default:
                throw ChatTemplate.error("cannot slice \(base.typeName)")
            }
        }

        private func iterate(_ value: Value) throws -> [Value] {
            switch value {
            case .undefined: return []
            case .list(let items): return items
            case .dict(let dict): return dict.keys.map { .string($0) }
            case .string(let text): return text.unicodeScalars.map { .string(String($0)) }
            default: throw ChatTemplate.error("cannot iterate over \(value.typeName)")
            }
        }

        private func binary(_ op: String, _ left: Value, _ right: Value) throws -> Value {
            if op == "~" { return .string(left.text + right.text) }
            if case .undefined(let name) = left { throw ChatTemplate.error("'\(name)' is undefined (in \(op))") }
            if case .undefined(let name) = right { throw ChatTemplate.error("'\(name)' is undefined (in \(op))") }
            switch (op, left, right) {
            case let ("+", .string(a), .string(b)): return .string(a + b)
            case let ("+", .list(a), .list(b)): return .list(a + b)
            case let ("*", .string(text), .int(count)):
                guard count <= 0 || text.isEmpty || count <= Self.maxLength / text.utf8.count else {
                    throw ChatTemplate.error("string repeated \(count) times is longer than \(Self.maxLength) bytes")
                }
                return .string(String(repeating: text, count: max(0, count)))
            case let ("*", .list(items), .int(count)):
                guard count <= 0 || items.isEmpty || count <= Self.maxLength / items.count else {
                    throw ChatTemplate.error("list repeated \(count) times has more than \(Self.maxLength) items")
                }
                return .list(Array([[Value]](repeating: items, count: max(0, count)).joined()))
            default: break
            }
            guard let a = left.number, let b = right.number else {
                throw ChatTemplate.error("unsupported operand types for \(op): \(left.typeName) and \(right.typeName)")
            }
            if let x = left.integer, let y = right.integer {
                switch op {
                case "+": return try checked(x.addingReportingOverflow(y), op)
                case "-": return try checked(x.subtractingReportingOverflow(y), op)
                case "*": return try checked(x.multipliedReportingOverflow(by: y), op)
                case "//", "%":
                    guard y != 0 else { throw ChatTemplate.error("integer division or modulo by zero") }
                    guard !(x == Int.min && y == -1) else { throw ChatTemplate.error("integer overflow in \(op)") }
                    // Python rounds the quotient down, so the remainder takes the divisor's sign.
                    var quotient = x / y
                    if (x % y != 0) && ((x < 0) != (y < 0)) { quotient -= 1 }
                    return .int(op == "//" ? quotient : x - quotient * y)
                case "**" where y >= 0:
                    // 0, 1 and -1 never overflow; any other base does within 64 steps.
                    if x == 0 || x == 1 { return .int(y == 0 ? 1 : x) }
                    if x == -1 { return .int(y % 2 == 0 ? 1 : -1) }
                    var result = 1
                    for _ in 0..<y {
                        let (product, overflow) = result.multipliedReportingOverflow(by: x)
                        if overflow { throw ChatTemplate.error("integer overflow in **") }
                        result = product
                    }
                    return .int(result)
                default: break
                }
            }
            switch op {
            case "+": return .double(a + b)
            case "-": return .double(a - b)
            case "*": return .double(a * b)
            case "/":
                guard b != 0 else { throw ChatTemplate.error("division by zero") }
                return .double(a / b)
            case "//":
                guard b != 0 else { throw ChatTemplate.error("division by zero") }
                return .double((a / b).rounded(.down))
            case "%":
                guard b != 0 else { throw ChatTemplate.error("modulo by zero") }
                return .double(a - b * (a / b).rounded(.down))
            case "**": return .double(pow(a, b))
            default: throw ChatTemplate.error("unsupported operator \(op)")
            }
        }

        private func checked(_ result: (partialValue: Int, overflow: Bool), _ op: String) throws -> Value {
            if result.overflow { throw ChatTemplate.error("integer overflow in \(op)") }
            return .int(result.partialValue)
        }

        private func compare(_ op: String, _ left: Value, _ right: Value) throws -> Bool {
            switch op {
            case "==": return left == right
            case "!=": return left != right
            case "in", "not in":
                let contained: Bool
                switch right {
                case .string(let haystack):
                    guard case .string(let needle) = left else {
                        throw ChatTemplate.error("'in <string>' requires a string on the left, not \(left.typeName)")
                    }
                    contained = needle.isEmpty || Self.scalarRange(of: needle, in: haystack)
                case .list(let items): contained = items.contains(left)
                case .dict(let dict): contained = { if case .string(let key) = left { return dict[key] != nil } else { return false } }()
                case .undefined: contained = false
                default: throw ChatTemplate.error("'in' needs a string, list or dict, not \(right.typeName)")
                }
                return op == "in" ? contained : !contained
            default:
                let order: Int
                if let a = left.number, let b = right.number {
                    order = a < b ? -1 : (a > b ? 1 : 0)
                } else if case .string(let a) = left, case .string(let b) = right {
                    // Python orders strings by code point.
                    let x = a.unicodeScalars.map(\.value), y = b.unicodeScalars.map(\.value)
                    order = x.lexicographicallyPrecedes(y) ? -1 : (x == y ? 0 : 1)
                } else {
                    throw ChatTemplate.error("cannot compare \(left.typeName) \(op) \(right.typeName)")
                }
                switch op {
                case "<": return order < 0
                case "<=": return order <= 0
                case ">": return order > 0
                default: return order >= 0
                }
            }
        }

        /// Substring test by Unicode scalars (Python's `in`, no canonical-equivalence folding).
        private static func scalarRange(of needle: String, in haystack: String) -> Bool {
            let n = Array(needle.unicodeScalars), h = Array(haystack.unicodeScalars)
            guard n.count <= h.count else { return false }
            for start in 0...(h.count - n.count) where h[start..<(start + n.count)].elementsEqual(n) { return true }
            return false
        }

        // MARK: functions, methods, filters, tests

        private func callGlobal(_ name: String, _ arguments: [Value], _ keywords: [(String, Value)]) throws -> Value {
            switch name {
            case "raise_exception":
                throw ChatTemplate.error("raise_exception: \(arguments.first?.text ?? "")")
            case "namespace":
                var attributes = Value.Dictionary()
                for (key, value) in keywords { attributes[key] = value }
                return .namespace(Value.Namespace(attributes))
            case "range":
                let bounds = arguments.compactMap(\.integer)
                guard bounds.count == arguments.count, (1...3).contains(bounds.count) else {
                    throw ChatTemplate.error("range() takes one to three integers")
                }
                let (start, stop, step) = bounds.count == 1 ? (0, bounds[0], 1)
                    : (bounds[0], bounds[1], bounds.count == 3 ? bounds[2] : 1)
                guard step != 0 else { throw ChatTemplate.error("range() step cannot be zero") }
                let span = Double(stop) - Double(start)
                guard span / Double(step) <= Double(Self.maxLength) else {
                    throw ChatTemplate.error("range() of more than \(Self.maxLength) items")
                }
                return .list(stride(from: start, to: stop, by: step).map { .int($0) })
            default:
                throw ChatTemplate.error("unsupported function \(name)()")
            }
        }

        private func callMethod(_ name: String, on base: Value, _ arguments: [Value]) throws -> Value {
            if case .string(let text) = base {
                let argument = arguments.first.flatMap { value -> String? in if case .string(let s) = value { return s } else { return nil } }
                switch name {
                case "strip": return .string(Self.strip(text, argument, leading: true, trailing: true))
                case "lstrip": return .string(Self.strip(text, argument, leading: true, trailing: false))
                case "rstrip": return .string(Self.strip(text, argument, leading: false, trailing: true))
                case "upper": return .string(text.uppercased())
                case "lower": return .string(text.lowercased())
                case "title": return .string(text.capitalized)
                case "capitalize": return .string(text.prefix(1).uppercased() + text.dropFirst().lowercased())
                case "startswith", "endswith":
                    guard let argument else { throw ChatTemplate.error("\(name)() needs a string") }
                    let t = Array(text.unicodeScalars), a = Array(argument.unicodeScalars)
                    return .bool(name == "startswith" ? t.starts(with: a) : t.reversed().starts(with: a.reversed()))
                case "split":
                    if let argument {
                        return .list(text.components(separatedBy: argument).map { .string($0) })
                    }
                    return .list(text.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
                case "replace":
                    guard arguments.count == 2, case .string(let old) = arguments[0], case .string(let new) = arguments[1] else {
                        throw ChatTemplate.error("replace() needs two strings")
                    }
                    return .string(text.replacingOccurrences(of: old, with: new))
                default: break
                }
            }
            if case .dict(let dict) = base {
                switch name {
                case "items": return .list(dict.pairs.map { .list([.string($0.0), $0.1]) })
                case "keys": return .list(dict.keys.map { .string($0) })
                case "values": return .list(dict.pairs.map(\.1))
                case "get":
                    guard case .string(let key)? = arguments.first else { throw ChatTemplate.error("get() needs a string key") }
                    return dict[key] ?? (arguments.count > 1 ? arguments[1] : .none)
                default: break
                }
            }
            if case .undefined(let missing) = base { throw ChatTemplate.error("'\(missing)' is undefined") }
            throw ChatTemplate.error("unsupported method \(base.typeName).\(name)()")
        }

        private func applyFilter(_ name: String, to value: Value, _ arguments: [Value],
                                 _ keywords: [(String, Value)]) throws -> Value {
            switch name {
            case "trim":
                return .string(Self.strip(value.text, nil, leading: true, trailing: true))
            case "upper": return .string(value.text.uppercased())
            case "lower": return .string(value.text.lowercased())
            case "capitalize": return .string(value.text.prefix(1).uppercased() + value.text.dropFirst().lowercased())
            case "title": return .string(value.text.capitalized)
            case "string": return .string(value.text)
            case "safe": return value
            case "length", "count":
                switch value {
                case .undefined: return .int(0)
                case .string(let text): return .int(text.unicodeScalars.count)
                case .list(let items): return .int(items.count)
                case .dict(let dict): return .int(dict.count)
                default: throw ChatTemplate.error("\(value.typeName) has no length")
                }
            case "first", "last":
                let items = try iterate(value)
                return (name == "first" ? items.first : items.last) ?? .undefined(name: "\(name) of empty sequence")
            case "list": return .list(try iterate(value))
            case "reverse":
                if case .string(let text) = value { return .string(String(text.unicodeScalars.reversed().map(Character.init))) }
                return .list(try iterate(value).reversed())
            case "join":
                let separator = arguments.first?.text ?? ""
                return .string(try iterate(value).map(\.text).joined(separator: separator))
            case "default", "d":
                let fallback = arguments.first ?? keywords.first { $0.0 == "default_value" }?.1 ?? .string("")
                let boolean = (arguments.count > 1 ? arguments[1] : keywords.first { $0.0 == "boolean" }?.1)?.isTruthy ?? false
                return value.isUndefined || (boolean && !value.isTruthy) ? fallback : value
            default:
                throw ChatTemplate.error("unsupported filter |\(name)")
            }
        }

        private func applyTest(_ name: String, to value: Value, _ arguments: [Value]) throws -> Bool {
            switch name {
            case "defined": return !value.isUndefined
            case "undefined": return value.isUndefined
            case "none": return value == .none && !value.isUndefined
            case "true": if case .bool(true) = value { return true } else { return false }
            case "false": if case .bool(false) = value { return true } else { return false }
            case "boolean": if case .bool = value { return true } else { return false }
            case "string": if case .string = value { return true } else { return false }
            case "integer": if case .int = value { return true } else { return false }
            case "float": if case .double = value { return true } else { return false }
            case "number":
                switch value { case .int, .double, .bool: return true; default: return false }
            case "mapping":
                switch value { case .dict: return true; default: return false }
            case "sequence", "iterable":
                switch value { case .list, .string, .dict: return true; default: return false }
            case "odd", "even":
                guard let integer = value.integer else { throw ChatTemplate.error("'\(name)' test needs an integer") }
                return (integer % 2 != 0) == (name == "odd")
            default:
                throw ChatTemplate.error("unsupported test 'is \(name)'")
            }
        }

        /// Python's str.strip family: whitespace, or any of the characters in `characters`.
        private static func strip(_ text: String, _ characters: String?, leading: Bool, trailing: Bool) -> String {
            let set = characters.map { Set($0.unicodeScalars) }
            func removable(_ scalar: Unicode.Scalar) -> Bool {
                set.map { $0.contains(scalar) } ?? ChatTemplate.isPythonSpace(scalar)
            }
            let scalars = Array(text.unicodeScalars)
            var lower = 0, upper = scalars.count
            if leading { while lower < upper, removable(scalars[lower]) { lower += 1 } }
            if trailing { while upper > lower, removable(scalars[upper - 1]) { upper -= 1 } }
            return String(String.UnicodeScalarView(scalars[lower..<upper]))
        }
    }
}
