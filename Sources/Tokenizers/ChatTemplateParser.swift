// Parses chat-template tokens into a tree. Expression precedence follows Jinja's parser, loosest first:
//   a if c else b  →  or  →  and  →  not  →  comparisons (==, !=, <, <=, >, >=, in, not in; chained)
//   →  + -  →  ~  →  * / // %  →  **  →  unary - +  →  primary with .attr, [index], [a:b], (call),
//   then | filter and `is` test (so `'a' + x | trim` trims x alone).
// Statements: if/elif/else/endif, for/else/endfor (one name or a tuple of names, optional `if` filter),
// set (name or namespace attribute), break, continue. Any other tag is an error naming it.
import Foundation

extension ChatTemplate {
    indirect enum Expression {
        case literal(Value)
        case name(String)
        case attribute(Expression, String)
        case index(Expression, Expression)
        case slice(Expression, start: Expression?, stop: Expression?, step: Expression?)
        case call(Expression, arguments: [Expression], keywords: [(String, Expression)])
        case filter(Expression, name: String, arguments: [Expression], keywords: [(String, Expression)])
        case test(Expression, name: String, arguments: [Expression], negated: Bool)
        case negate(Expression)
        case plus(Expression)
        case not(Expression)
        case and(Expression, Expression)
        case or(Expression, Expression)
        case binary(String, Expression, Expression)
        /// `a < b <= c` means `a < b and b <= c`, each operand evaluated once.
        case compare(Expression, [(String, Expression)])
        case conditional(condition: Expression, then: Expression, otherwise: Expression?)
        case list([Expression])
        case dict([(Expression, Expression)])
    }

    indirect enum Node {
        case text(String)
        case output(Expression)
        case ifBlock(branches: [(Expression, [Node])], otherwise: [Node])
        case forLoop(targets: [String], iterable: Expression, filter: Expression?, body: [Node], otherwise: [Node])
        /// `set name = …`, or `set ns.attribute = …` when `attribute` is given.
        case set(name: String, attribute: String?, value: Expression)
        case breakLoop
        case continueLoop
    }

    struct Parser {
        private let tokens: [Token]
        private var index = 0

        private init(tokens: [Token]) { self.tokens = tokens }

        /// The template's tree.
        static func parse(_ template: String) throws -> [Node] {
            var parser = Parser(tokens: try Lexer.tokenize(template))
            let (nodes, end) = try parser.parseNodes(until: [])
            if let end { throw ChatTemplate.error(line: parser.line, "unexpected {% \(end) %}") }
            return nodes
        }

        // MARK: statements

        /// Nodes up to one of the `until` tags (consumed, returned) or the end of the template.
        private mutating func parseNodes(until: Set<String>) throws -> ([Node], String?) {
            var nodes: [Node] = []
            while index < tokens.count {
                let token = tokens[index]
                index += 1
                switch token.kind {
                case .text(let text):
                    nodes.append(.text(text))
                case .outputStart:
                    nodes.append(.output(try parseExpression()))
                    try expect(.outputEnd, "}}")
                case .blockStart:
                    let tagLine = line
                    guard case .name(let tag) = peek else {
                        throw ChatTemplate.error(line: tagLine, "a {% %} tag must start with a name")
                    }
                    if until.contains(tag) {
                        index += 1
                        return (nodes, tag)
                    }
                    index += 1
                    nodes.append(try parseStatement(tag, line: tagLine))
                default:
                    throw ChatTemplate.error(line: token.line, "unexpected token")
                }
            }
            return (nodes, nil)
        }

        private mutating func parseStatement(_ tag: String, line tagLine: Int) throws -> Node {
            switch tag {
            case "if":
                var branches: [(Expression, [Node])] = []
                var condition = try parseExpression()
                while true {
                    try expect(.blockEnd, "%}")
                    let (body, end) = try parseNodes(until: ["elif", "else", "endif"])
                    branches.append((condition, body))
                    switch end {
                    case "elif":
                        condition = try parseExpression()
                    case "else":
                        try expect(.blockEnd, "%}")
                        let (otherwise, end) = try parseNodes(until: ["endif"])
                        guard end != nil else { throw ChatTemplate.error(line: tagLine, "{% if %} without {% endif %}") }
                        try expect(.blockEnd, "%}")
                        return .ifBlock(branches: branches, otherwise: otherwise)
                    case "endif":
                        try expect(.blockEnd, "%}")
                        return .ifBlock(branches: branches, otherwise: [])
                    default:
                        throw ChatTemplate.error(line: tagLine, "{% if %} without {% endif %}")
                    }
                }
            case "for":
                var targets = [try parseName()]
                while accept(.symbol(",")) { targets.append(try parseName()) }
                guard accept(.name("in")) else { throw ChatTemplate.error(line: line, "expected 'in' in {% for %}") }
                // The iterable stops before a loop filter `if`, so no conditional expression here.
                let iterable = try parseOr()
                let filter = accept(.name("if")) ? try parseOr() : nil
                if case .name(let word) = peek, word == "recursive" {
                    throw ChatTemplate.error(line: line, "unsupported: recursive for loops")
                }
                try expect(.blockEnd, "%}")
                let (body, end) = try parseNodes(until: ["else", "endfor"])
                var otherwise: [Node] = []
                if end == "else" {
                    try expect(.blockEnd, "%}")
                    let (elseBody, elseEnd) = try parseNodes(until: ["endfor"])
                    guard elseEnd != nil else { throw ChatTemplate.error(line: tagLine, "{% for %} without {% endfor %}") }
                    otherwise = elseBody
                } else if end == nil {
                    throw ChatTemplate.error(line: tagLine, "{% for %} without {% endfor %}")
                }
                try expect(.blockEnd, "%}")
                return .forLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise)
            case "set":
                let name = try parseName()
                let attribute = accept(.symbol(".")) ? try parseName() : nil
                if peek == .blockEnd {
                    throw ChatTemplate.error(line: tagLine, "unsupported: block {% set %} … {% endset %}")
                }
                guard accept(.symbol("=")) else { throw ChatTemplate.error(line: line, "expected '=' in {% set %}") }
                let value = try parseExpression()
                try expect(.blockEnd, "%}")
                return .set(name: name, attribute: attribute, value: value)
            case "break", "continue":
                try expect(.blockEnd, "%}")
                return tag == "break" ? .breakLoop : .continueLoop
            case "elif", "else", "endif", "endfor":
                throw ChatTemplate.error(line: tagLine, "unexpected {% \(tag) %}")
            default:
                throw ChatTemplate.error(line: tagLine, "unsupported tag {% \(tag) %}")
            }
        }

        // MARK: expressions

        private mutating func parseExpression() throws -> Expression {
            let value = try parseOr()
            guard accept(.name("if")) else { return value }
            let condition = try parseOr()
            let otherwise = accept(.name("else")) ? try parseExpression() : nil
            return .conditional(condition: condition, then: value, otherwise: otherwise)
        }

        private mutating func parseOr() throws -> Expression {
            var left = try parseAnd()
            while accept(.name("or")) { left = .or(left, try parseAnd()) }
            return left
        }

        private mutating func parseAnd() throws -> Expression {
            var left = try parseNot()
            while accept(.name("and")) { left = .and(left, try parseNot()) }
            return left
        }

        private mutating func parseNot() throws -> Expression {
            if accept(.name("not")) { return .not(try parseNot()) }
            return try parseCompare()
        }

        private mutating func parseCompare() throws -> Expression {
            let first = try parseMath1()
            var rest: [(String, Expression)] = []
            while true {
                if case .symbol(let op) = peek, ["==", "!=", "<", "<=", ">", ">="].contains(op) {
                    index += 1
                    rest.append((op, try parseMath1()))
                } else if accept(.name("in")) {
                    rest.append(("in", try parseMath1()))
                } else if peek == .name("not"), index + 1 < tokens.count, tokens[index + 1].kind == .name("in") {
                    index += 2
                    rest.append(("not in", try parseMath1()))
                } else {
                    break
                }
            }
            return rest.isEmpty ? first : .compare(first, rest)
        }

        private mutating func parseMath1() throws -> Expression {
            var left = try parseConcat()
            while case .symbol(let op) = peek, op == "+" || op == "-" {
                index += 1
                left = .binary(op, left, try parseConcat())
            }
            return left
        }

        private mutating func parseConcat() throws -> Expression {
            var left = try parseMath2()
            while accept(.symbol("~")) { left = .binary("~", left, try parseMath2()) }
            return left
        }

        private mutating func parseMath2() throws -> Expression {
            var left = try parsePow()
            while case .symbol(let op) = peek, ["*", "/", "//", "%"].contains(op) {
                index += 1
                left = .binary(op, left, try parsePow())
            }
            return left
        }

        private mutating func parsePow() throws -> Expression {
            var left = try parseUnary(withFilter: true)
            while accept(.symbol("**")) { left = .binary("**", left, try parseUnary(withFilter: true)) }
            return left
        }

        private mutating func parseUnary(withFilter: Bool) throws -> Expression {
            var node: Expression
            if accept(.symbol("-")) {
                node = .negate(try parseUnary(withFilter: false))
            } else if accept(.symbol("+")) {
                node = .plus(try parseUnary(withFilter: false))
            } else {
                node = try parsePostfix(try parsePrimary())
            }
            return withFilter ? try parseFiltersAndTests(node) : node
        }

        private mutating func parsePrimary() throws -> Expression {
            let token = tokens.indices.contains(index) ? tokens[index] : Token(kind: .blockEnd, line: line)
            index += 1
            switch token.kind {
            case .string(var text):
                // Adjacent literals concatenate, as in Python.
                while case .string(let more) = peek { text += more; index += 1 }
                return .literal(.string(text))
            case .integer(let value): return .literal(.int(value))
            case .float(let value): return .literal(.double(value))
            case .name(let name):
                switch name {
                case "true", "True": return .literal(.bool(true))
                case "false", "False": return .literal(.bool(false))
                case "none", "None": return .literal(.none)
                default: return .name(name)
                }
            case .symbol("("):
                let inner = try parseExpression()
                if peek == .symbol(",") {
                    throw ChatTemplate.error(line: token.line, "unsupported: tuple expressions")
                }
                try expect(.symbol(")"), ")")
                return inner
            case .symbol("["):
                var items: [Expression] = []
                while !accept(.symbol("]")) {
                    items.append(try parseExpression())
                    if !accept(.symbol(",")) { try expect(.symbol("]"), "]"); break }
                }
                return .list(items)
            case .symbol("{"):
                var pairs: [(Expression, Expression)] = []
                while !accept(.symbol("}")) {
                    let key = try parseExpression()
                    try expect(.symbol(":"), ":")
                    pairs.append((key, try parseExpression()))
                    if !accept(.symbol(",")) { try expect(.symbol("}"), "}"); break }
                }
                return .dict(pairs)
            default:
                throw ChatTemplate.error(line: token.line, "expected a value, found \(Self.describe(token.kind))")
            }
        }

        private mutating func parsePostfix(_ base: Expression) throws -> Expression {
            var node = base
            while true {
                if accept(.symbol(".")) {
                    node = .attribute(node, try parseName())
                } else if accept(.symbol("[")) {
                    node = try parseSubscript(node)
                } else if accept(.symbol("(")) {
                    let (arguments, keywords) = try parseArguments()
                    node = .call(node, arguments: arguments, keywords: keywords)
                } else {
                    return node
                }
            }
        }

        /// After `[`: an index or a slice `[start:stop:step]`.
        private mutating func parseSubscript(_ base: Expression) throws -> Expression {
            var parts: [Expression?] = [nil]
            var isSlice = false
            while !accept(.symbol("]")) {
                if accept(.symbol(":")) {
                    isSlice = true
                    parts.append(nil)
                    guard parts.count <= 3 else { throw ChatTemplate.error(line: line, "too many ':' in slice") }
                } else {
                    guard parts[parts.count - 1] == nil else { throw ChatTemplate.error(line: line, "expected ']'") }
                    parts[parts.count - 1] = try parseExpression()
                }
            }
            if !isSlice {
                guard let index = parts[0] else { throw ChatTemplate.error(line: line, "empty subscript []") }
                return .index(base, index)
            }
            while parts.count < 3 { parts.append(nil) }
            return .slice(base, start: parts[0], stop: parts[1], step: parts[2])
        }

        /// After `(`: positional and keyword arguments up to `)`.
        private mutating func parseArguments() throws -> ([Expression], [(String, Expression)]) {
            var arguments: [Expression] = []
            var keywords: [(String, Expression)] = []
            while !accept(.symbol(")")) {
                if case .name(let name) = peek, index + 1 < tokens.count, tokens[index + 1].kind == .symbol("=") {
                    index += 2
                    keywords.append((name, try parseExpression()))
                } else {
                    arguments.append(try parseExpression())
                }
                if !accept(.symbol(",")) { try expect(.symbol(")"), ")"); break }
            }
            return (arguments, keywords)
        }

        private mutating func parseFiltersAndTests(_ base: Expression) throws -> Expression {
            var node = base
            while true {
                if accept(.symbol("|")) {
                    let name = try parseName()
                    var (arguments, keywords) = ([Expression](), [(String, Expression)]())
                    if accept(.symbol("(")) { (arguments, keywords) = try parseArguments() }
                    node = .filter(node, name: name, arguments: arguments, keywords: keywords)
                } else if accept(.name("is")) {
                    let negated = accept(.name("not"))
                    var name = try parseName()
                    // `is none` / `is true` arrive as names here; keep them as test names.
                    if name == "None" { name = "none" }
                    var arguments: [Expression] = []
                    if accept(.symbol("(")) { arguments = try parseArguments().0 }
                    node = .test(node, name: name, arguments: arguments, negated: negated)
                } else {
                    return node
                }
            }
        }

        // MARK: helpers

        private var peek: Token.Kind? { index < tokens.count ? tokens[index].kind : nil }

        private var line: Int { tokens.indices.contains(index) ? tokens[index].line : (tokens.last?.line ?? 1) }

        private mutating func accept(_ kind: Token.Kind) -> Bool {
            guard peek == kind else { return false }
            index += 1
            return true
        }

        private mutating func expect(_ kind: Token.Kind, _ spelling: String) throws {
            guard accept(kind) else {
                throw ChatTemplate.error(line: line, "expected \(spelling), found \(peek.map(Self.describe) ?? "end of template")")
            }
        }

        private mutating func parseName() throws -> String {
            guard case .name(let name) = peek else {
                throw ChatTemplate.error(line: line, "expected a name, found \(peek.map(Self.describe) ?? "end of template")")
            }
            index += 1
            return name
        }

        private static func describe(_ kind: Token.Kind) -> String {
            switch kind {
            case .text: return "text"
            case .outputStart: return "{{"
            case .outputEnd: return "}}"
            case .blockStart: return "{%"
            case .blockEnd: return "%}"
            case .name(let name): return "'\(name)'"
            case .string: return "a string"
            case .integer(let value): return "\(value)"
            case .float(let value): return "\(value)"
            case .symbol(let symbol): return "'\(symbol)'"
            }
        }
    }
}
