// The patterns a pre-tokenizer splits on. The regexes of GPT-2 (also ByteLevel's built-in one, used by
// SmolLM2), Llama-3 and Qwen2 are matched by hand-written code that reproduces their leftmost-first
// alternation and backtracking exactly, with Oniguruma's (the tokenizers library's) definition of \s;
// other regexes fall back to NSRegularExpression (ICU) with \s/\S rewritten to that definition.
import Foundation
import Support

extension BPETokenizer {
    /// Something that finds the pieces of a pre-token: every scalar lands in exactly one returned
    /// range, flagged true where the pattern matched.
    enum SplitPattern {
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
        case gpt2
        /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
        /// (Llama-3: maxDigits 3; Qwen2: 1).
        case llama3(maxDigits: Int)
        /// A literal string (Split's `{"String": ...}`).
        case literal([Unicode.Scalar])
        /// Any other regex, run by ICU.
        case regex(NSRegularExpression)
        /// Each scalar for which the predicate holds is its own match (the Digits pre-tokenizer).
        case scalar((Unicode.Scalar) -> Bool)

        static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        static let llama3Source =
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        static let qwen2Source =
            #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

        /// The pattern for a regex source: hand-coded when it is a known one, else compiled by ICU.
        static func regex(_ source: String, file: URL) throws -> SplitPattern {
            switch source {
            case gpt2Source: return .gpt2
            case llama3Source: return .llama3(maxDigits: 3)
            case qwen2Source: return .llama3(maxDigits: 1)
            default: return .regex(try icuRegex(source, file: file))
            }
        }

        /// "gpt2 regex", "llama3 regex" or "qwen2 regex" for the known sources, else "Regex" and the source quoted.
        static func name(ofRegex source: String) -> String {
            switch source {
            case gpt2Source: "gpt2 regex"
            case llama3Source: "llama3 regex"
            case qwen2Source: "qwen2 regex"
            default: "Regex \(source.debugDescription)"
            }
        }

        /// Compiles `source` with ICU after rewriting \s and \S to Oniguruma's whitespace set
        /// (ICU's \s lacks U+000B and U+0085).
        static func icuRegex(_ source: String, file: URL) throws -> NSRegularExpression {
            let space = #"\t\n\x{0B}\f\r\x{85}\p{Z}"#
            var rewritten = ""
            var classDepth = 0
            var scalars = source.unicodeScalars.makeIterator()
            while let scalar = scalars.next() {
                switch scalar {
                case "\\":
                    guard let escaped = scalars.next() else { rewritten.unicodeScalars.append(scalar); break }
                    if escaped == "s" {
                        rewritten += classDepth > 0 ? space : "[\(space)]"
                    } else if escaped == "S" {
                        rewritten += "[^\(space)]"  // ICU accepts a nested set inside a class too
                    } else {
                        rewritten.unicodeScalars.append(scalar)
                        rewritten.unicodeScalars.append(escaped)
                    }
                case "[":
                    classDepth += 1
                    rewritten.unicodeScalars.append(scalar)
                case "]":
                    classDepth = max(0, classDepth - 1)
                    rewritten.unicodeScalars.append(scalar)
                default:
                    rewritten.unicodeScalars.append(scalar)
                }
            }
            do {
                return try NSRegularExpression(pattern: rewritten)
            } catch {
                throw PruneError(file: file, "pre_tokenizer regex \(source) does not compile: \(error)")
            }
        }

        /// Consecutive ranges covering `text`, flagged true where the pattern matched.
        func matches(in text: ArraySlice<Unicode.Scalar>) -> [(range: Range<Int>, isMatch: Bool)] {
            switch self {
            case .gpt2:
                return Self.cover(text) { Self.gpt2Match(text, at: $0) }
            case .llama3(let maxDigits):
                return Self.cover(text) { Self.llama3Match(text, at: $0, maxDigits: maxDigits) }
            case .literal(let needle):
                return Self.cover(text) { Self.literalMatch(text, at: $0, needle: needle) }
            case .scalar(let predicate):
                return Self.cover(text) { predicate(text[$0]) ? $0 + 1 : nil }
            case .regex(let regex):
                return Self.icuMatches(regex, in: text)
            }
        }

        /// Runs a "match at i → end or nil" function left to right, keeping the gaps as non-matches.
        private static func cover(_ text: ArraySlice<Unicode.Scalar>,
                                  _ matchEnd: (Int) -> Int?) -> [(range: Range<Int>, isMatch: Bool)] {
            var pieces: [(range: Range<Int>, isMatch: Bool)] = []
            var gapStart = text.startIndex
            var i = text.startIndex
            while i < text.endIndex {
                if let end = matchEnd(i), end > i {
                    if gapStart < i { pieces.append((gapStart..<i, false)) }
                    pieces.append((i..<end, true))
                    i = end
                    gapStart = end
                } else {
                    i += 1
                }
            }
            if gapStart < text.endIndex { pieces.append((gapStart..<text.endIndex, false)) }
            return pieces
        }

        // MARK: hand-coded regexes

        /// End of the GPT-2 regex match starting at `i` (every scalar starts one).
        static func gpt2Match(_ s: ArraySlice<Unicode.Scalar>, at i: Int) -> Int {
            let end = s.endIndex
            if s[i] == "'", let length = contractionLength(s, at: i + 1, ignoringCase: false) {
                return i + 1 + length
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: the space joins only a run that follows it.
            var start = i
            if s[i] == " ", i + 1 < end, !ScalarClass.isSpace(s[i + 1]) { start = i + 1 }
            let first = s[start]
            if ScalarClass.isLetter(first) { return run(s, from: start, ScalarClass.isLetter) }
            if ScalarClass.isNumber(first) { return run(s, from: start, ScalarClass.isNumber) }
            if ScalarClass.isOther(first) { return run(s, from: start, ScalarClass.isOther) }
            return whitespaceMatch(s, at: i)
        }

        /// End of the Llama-3/Qwen2 regex match starting at `i`.
        static func llama3Match(_ s: ArraySlice<Unicode.Scalar>, at i: Int, maxDigits: Int) -> Int {
            let end = s.endIndex
            let c = s[i]
            if c == "'", let length = contractionLength(s, at: i + 1, ignoringCase: true) {
                return i + 1 + length
            }
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if ScalarClass.isLetter(c) { return run(s, from: i, ScalarClass.isLetter) }
            if c != "\r", c != "\n", !ScalarClass.isNumber(c), i + 1 < end, ScalarClass.isLetter(s[i + 1]) {
                return run(s, from: i + 1, ScalarClass.isLetter)
            }
            // `\p{N}{1,3}`
            if ScalarClass.isNumber(c) { return min(run(s, from: i, ScalarClass.isNumber), i + maxDigits) }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            var start = i
            if c == " ", i + 1 < end, ScalarClass.isOther(s[i + 1]) { start = i + 1 }
            if ScalarClass.isOther(s[start]) {
                return run(s, from: run(s, from: start, ScalarClass.isOther)) { $0 == "\r" || $0 == "\n" }
            }
            // `\s*[\r\n]+`: the whitespace run up to and including its last line break.
            let spaceEnd = run(s, from: i, ScalarClass.isSpace)
            var lastBreak = spaceEnd - 1
            while lastBreak >= i, s[lastBreak] != "\r", s[lastBreak] != "\n" { lastBreak -= 1 }
            if lastBreak >= i { return lastBreak + 1 }
            return whitespaceMatch(s, at: i)
        }

        /// `\s+(?!\S)|\s+` at `i`: a whitespace run, less its last scalar when a non-space follows
        /// (that one then prefixes the next word), unless it is the only one.
        private static func whitespaceMatch(_ s: ArraySlice<Unicode.Scalar>, at i: Int) -> Int {
            let spaceEnd = run(s, from: i, ScalarClass.isSpace)
            if spaceEnd == s.endIndex || spaceEnd - i < 2 { return spaceEnd }
            return spaceEnd - 1
        }

        /// Length after the apostrophe of `s|t|re|ve|m|ll|d` at `i`, if one is there.
        private static func contractionLength(_ s: ArraySlice<Unicode.Scalar>, at i: Int, ignoringCase: Bool) -> Int? {
            guard i < s.endIndex else { return nil }
            func fold(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
                guard ignoringCase else { return scalar }
                // Oniguruma's case folding maps U+017F (long s) to "s" as well.
                if scalar == "\u{17F}" { return "s" }
                if ("A"..."Z").contains(scalar) { return Unicode.Scalar(scalar.value + 32)! }
                return scalar
            }
            let first = fold(s[i])
            let second: Unicode.Scalar? = i + 1 < s.endIndex ? fold(s[i + 1]) : nil
            switch first {
            case "s", "t", "m", "d": return 1
            case "r", "v": return second == "e" ? 2 : nil
            case "l": return second == "l" ? 2 : nil
            default: return nil
            }
        }

        private static func run(_ s: ArraySlice<Unicode.Scalar>, from i: Int,
                                _ predicate: (Unicode.Scalar) -> Bool) -> Int {
            var j = i
            while j < s.endIndex, predicate(s[j]) { j += 1 }
            return j
        }

        private static func literalMatch(_ s: ArraySlice<Unicode.Scalar>, at i: Int, needle: [Unicode.Scalar]) -> Int? {
            guard !needle.isEmpty, i + needle.count <= s.endIndex else { return nil }
            for (k, scalar) in needle.enumerated() where s[i + k] != scalar { return nil }
            return i + needle.count
        }

        // MARK: ICU

        private static func icuMatches(_ regex: NSRegularExpression,
                                       in text: ArraySlice<Unicode.Scalar>) -> [(range: Range<Int>, isMatch: Bool)] {
            // NSRegularExpression speaks UTF-16 offsets; map them back to scalar indices.
            var string = String.UnicodeScalarView()
            string.append(contentsOf: text)
            let ns = String(string) as NSString
            var scalarAtUTF16: [Int] = []
            scalarAtUTF16.reserveCapacity(ns.length + 1)
            for (k, scalar) in text.enumerated() {
                for _ in 0..<(scalar.value > 0xFFFF ? 2 : 1) { scalarAtUTF16.append(text.startIndex + k) }
            }
            scalarAtUTF16.append(text.endIndex)
            var pieces: [(range: Range<Int>, isMatch: Bool)] = []
            var previous = text.startIndex
            for match in regex.matches(in: ns as String, range: NSRange(location: 0, length: ns.length)) {
                let start = scalarAtUTF16[match.range.location]
                let end = scalarAtUTF16[match.range.location + match.range.length]
                guard end > start else { continue }
                if previous < start { pieces.append((previous..<start, false)) }
                pieces.append((start..<end, true))
                previous = end
            }
            if previous < text.endIndex { pieces.append((previous..<text.endIndex, false)) }
            return pieces
        }
    }

    /// Unicode classes as the tokenizers library's regex engine (Oniguruma) and Rust define them.
    enum ScalarClass {
        private static let letter: UInt8 = 1, number: UInt8 = 2, space: UInt8 = 4

        private static let ascii: [UInt8] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

        private static func classify(_ scalar: Unicode.Scalar) -> UInt8 {
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                return letter
            case .decimalNumber, .letterNumber, .otherNumber:
                return number
            case .spaceSeparator, .lineSeparator, .paragraphSeparator:
                return space
            default:
                // Oniguruma's \s also has TAB…CR and NEL.
                return (0x09...0x0D).contains(scalar.value) || scalar.value == 0x85 ? space : 0
            }
        }

        @inline(__always) private static func of(_ scalar: Unicode.Scalar) -> UInt8 {
            scalar.value < 128 ? ascii[Int(scalar.value)] : classify(scalar)
        }

        /// `\p{L}`
        @inline(__always) static func isLetter(_ scalar: Unicode.Scalar) -> Bool { of(scalar) == letter }
        /// `\p{N}`, also Rust's `char::is_numeric` (the Digits pre-tokenizer).
        @inline(__always) static func isNumber(_ scalar: Unicode.Scalar) -> Bool { of(scalar) == number }
        /// Oniguruma's `\s`.
        @inline(__always) static func isSpace(_ scalar: Unicode.Scalar) -> Bool { of(scalar) == space }
        /// `[^\s\p{L}\p{N}]`
        @inline(__always) static func isOther(_ scalar: Unicode.Scalar) -> Bool { of(scalar) == 0 }
    }
}
