// Cuts a Jinja template into text and tag tokens, applying Jinja's whitespace rules the way
// transformers configures them (trim_blocks and lstrip_blocks on, keep_trailing_newline off):
//   `{%-` / `{{-` / `{#-` strip all whitespace before the tag, `-%}` / `-}}` / `-#}` all after it;
//   a block or comment tag swallows the one newline after it (trim_blocks) and the spaces/tabs before
//   it on its own line (lstrip_blocks), unless written `{%+` / `+%}`;
//   line endings become "\n" and one final newline of the template is dropped.
import Foundation

extension ChatTemplate {
    /// One lexical token with the line it starts on (for error messages).
    struct Token {
        enum Kind: Equatable {
            case text(String)
            /// `{{` … `}}`
            case outputStart, outputEnd
            /// `{%` … `%}`
            case blockStart, blockEnd
            case name(String)
            case string(String)
            case integer(Int)
            case float(Double)
            /// Operators and punctuation: + - * / // % ** ~ == != < <= > >= = ( ) [ ] { } . , : |
            case symbol(String)
        }

        let kind: Kind
        let line: Int
    }

    struct Lexer {
        private let source: [Unicode.Scalar]
        private var position = 0
        private var line = 1
        private var tokens: [Token] = []
        /// Set by a tag ending in `-`: the following text loses its leading whitespace.
        private var stripNextText = false

        init(_ template: String) {
            // Jinja normalizes newlines and drops a single trailing newline.
            var text = template.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            if text.hasSuffix("\n") { text.removeLast() }
            source = Array(text.unicodeScalars)
        }

        /// All tokens of the template.
        static func tokenize(_ template: String) throws -> [Token] {
            var lexer = Lexer(template)
            try lexer.run()
            return lexer.tokens
        }

        private mutating func run() throws {
            while position < source.count {
                guard let tagStart = nextTagStart(from: position) else {
                    emitText(position..<source.count, before: nil)
                    position = source.count
                    break
                }
                let opener = source[tagStart + 1]  // "{", "%" or "#"
                let modifier: Unicode.Scalar? = tagStart + 2 < source.count ? source[tagStart + 2] : nil
                emitText(position..<tagStart, before: (opener, modifier))
                advance(to: tagStart + 2)
                // `{{+` is a unary plus, not a modifier.
                if modifier == "-" || (modifier == "+" && opener != "{") { advance(to: position + 1) }
                switch opener {
                case "#": try skipComment()
                case "{": try lexTag(start: .outputStart, end: .outputEnd, closer: "}")
                default: try lexTag(start: .blockStart, end: .blockEnd, closer: "%")
                }
            }
        }

        private func nextTagStart(from start: Int) -> Int? {
            var i = start
            while i + 1 < source.count {
                if source[i] == "{", ["{", "%", "#"].contains(source[i + 1]) { return i }
                i += 1
            }
            return nil
        }

        /// Emits source[range] as text after the whitespace rules of the tag that follows it (if any).
        private mutating func emitText(_ range: Range<Int>, before tag: (opener: Unicode.Scalar, modifier: Unicode.Scalar?)?) {
            var lower = range.lowerBound, upper = range.upperBound
            if stripNextText {
                while lower < upper, ChatTemplate.isPythonSpace(source[lower]) { lower += 1 }
                stripNextText = false
            }
            if let tag {
                if tag.modifier == "-" {
                    while upper > lower, ChatTemplate.isPythonSpace(source[upper - 1]) { upper -= 1 }
                } else if tag.opener != "{", tag.modifier != "+" {
                    // lstrip_blocks: only whitespace between the line start and the tag.
                    var i = upper
                    while i > lower, source[i - 1] != "\n", ChatTemplate.isPythonSpace(source[i - 1]) { i -= 1 }
                    let atLineStart = i > lower ? source[i - 1] == "\n" : (i == 0 || source[i - 1] == "\n")
                    if atLineStart { upper = i }
                }
            }
            if lower < upper {
                var text = String.UnicodeScalarView()
                text.append(contentsOf: source[lower..<upper])
                tokens.append(Token(kind: .text(String(text)), line: line))
            }
            advance(to: range.upperBound)
        }

        /// Moves forward, counting lines.
        private mutating func advance(to target: Int) {
            while position < target {
                if source[position] == "\n" { line += 1 }
                position += 1
            }
        }

        /// Applies the closing side of a tag: `-` strips what follows, otherwise block tags eat one newline.
        private mutating func closeTag(modifier: Unicode.Scalar?, isBlock: Bool) {
            if modifier == "-" {
                stripNextText = true
            } else if isBlock, modifier != "+", position < source.count, source[position] == "\n" {
                advance(to: position + 1)
            }
        }

        private mutating func skipComment() throws {
            let startLine = line
            var i = position
            while i + 1 < source.count, !(source[i] == "#" && source[i + 1] == "}") { i += 1 }
            guard i + 1 < source.count else { throw ChatTemplate.error(line: startLine, "unterminated comment") }
            let modifier: Unicode.Scalar? = i > position && (source[i - 1] == "-" || source[i - 1] == "+") ? source[i - 1] : nil
            advance(to: i + 2)
            closeTag(modifier: modifier, isBlock: true)
        }

        /// Expression tokens up to the closing `}}` or `%}`.
        private mutating func lexTag(start: Token.Kind, end: Token.Kind, closer: Unicode.Scalar) throws {
            tokens.append(Token(kind: start, line: line))
            let startLine = line
            while true {
                while position < source.count, source[position].properties.isWhitespace { advance(to: position + 1) }
                guard position < source.count else {
                    throw ChatTemplate.error(line: startLine, "unterminated tag (missing \(closer)})")
                }
                let c = source[position]
                let next: Unicode.Scalar? = position + 1 < source.count ? source[position + 1] : nil
                let afterNext: Unicode.Scalar? = position + 2 < source.count ? source[position + 2] : nil
                if c == closer, next == "}" {
                    advance(to: position + 2)
                    tokens.append(Token(kind: end, line: line))
                    closeTag(modifier: nil, isBlock: closer == "%")
                    return
                }
                if c == "-" || c == "+", next == closer, afterNext == "}" {
                    advance(to: position + 3)
                    tokens.append(Token(kind: end, line: line))
                    closeTag(modifier: c, isBlock: closer == "%")
                    return
                }
                tokens.append(Token(kind: try lexExpressionToken(), line: line))
            }
        }

        private mutating func lexExpressionToken() throws -> Token.Kind {
            let c = source[position]
            if c == "'" || c == "\"" { return .string(try lexString(quote: c)) }
            if ("0"..."9").contains(c) { return lexNumber() }
            if c == "_" || c.properties.isAlphabetic {
                var i = position
                while i < source.count, source[i] == "_" || source[i].properties.isAlphabetic || ("0"..."9").contains(source[i]) {
                    i += 1
                }
                var name = String.UnicodeScalarView()
                name.append(contentsOf: source[position..<i])
                advance(to: i)
                return .name(String(name))
            }
            for symbol in ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=",
                           "(", ")", "[", "]", "{", "}", ".", ",", ":", "|"] where matches(symbol) {
                advance(to: position + symbol.unicodeScalars.count)
                return .symbol(symbol)
            }
            throw ChatTemplate.error(line: line, "unexpected character \"\(c)\" in tag")
        }

        private func matches(_ symbol: String) -> Bool {
            for (k, scalar) in symbol.unicodeScalars.enumerated() {
                guard position + k < source.count, source[position + k] == scalar else { return false }
            }
            return true
        }

        private mutating func lexNumber() -> Token.Kind {
            var i = position
            func digits() { while i < source.count, ("0"..."9").contains(source[i]) || source[i] == "_" { i += 1 } }
            digits()
            var isFloat = false
            if i + 1 < source.count, source[i] == ".", ("0"..."9").contains(source[i + 1]) {
                isFloat = true
                i += 1
                digits()
            }
            if i < source.count, source[i] == "e" || source[i] == "E" {
                var j = i + 1
                if j < source.count, source[j] == "+" || source[j] == "-" { j += 1 }
                if j < source.count, ("0"..."9").contains(source[j]) {
                    isFloat = true
                    i = j
                    digits()
                }
            }
            var text = String.UnicodeScalarView()
            text.append(contentsOf: source[position..<i].filter { $0 != "_" })
            advance(to: i)
            return isFloat ? .float(Double(String(text)) ?? 0) : .integer(Int(String(text)) ?? Int.max)
        }

        /// A quoted literal with Python's escapes (\n \t \r \\ \' \" \xhh \uhhhh \Uhhhhhhhh …).
        private mutating func lexString(quote: Unicode.Scalar) throws -> String {
            let startLine = line
            var out = String.UnicodeScalarView()
            var i = position + 1
            while i < source.count, source[i] != quote {
                guard source[i] == "\\", i + 1 < source.count else {
                    out.append(source[i])
                    i += 1
                    continue
                }
                let escaped = source[i + 1]
                i += 2
                switch escaped {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "0": out.append("\0")
                case "a": out.append("\u{07}")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "v": out.append("\u{0B}")
                case "\\", "'", "\"": out.append(escaped)
                case "\n": break  // a backslash-newline continues the line
                case "x", "u", "U":
                    let width = escaped == "x" ? 2 : escaped == "u" ? 4 : 8
                    var hex = String.UnicodeScalarView()
                    if i + width <= source.count { hex.append(contentsOf: source[i..<(i + width)]) }
                    guard hex.count == width, let value = UInt32(String(hex), radix: 16), let scalar = Unicode.Scalar(value) else {
                        throw ChatTemplate.error(line: line, "bad \\\(escaped) escape in string literal")
                    }
                    out.append(scalar)
                    i += width
                default:
                    // Python keeps unknown escapes as written.
                    out.append("\\")
                    out.append(escaped)
                }
            }
            guard i < source.count else { throw ChatTemplate.error(line: startLine, "unterminated string literal") }
            advance(to: i + 1)
            return String(out)
        }
    }
}
