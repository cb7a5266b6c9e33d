// Added tokens (tokenizer.json's `added_tokens`): strings such as "<|im_start|>" that are found in the
// text before any normalization or splitting and become one id each, never split. Matching is
// leftmost-longest, as the tokenizers library's Aho-Corasick automaton does, with its `lstrip`,
// `rstrip` and `single_word` rules.
import Foundation
import Support

extension BPETokenizer {
    /// One entry of `added_tokens`.
    public struct AddedToken: Sendable {
        public internal(set) var id: Int32
        public let content: String
        /// Special tokens are dropped by `decode(_:skipSpecialTokens: true)`.
        public let special: Bool
        /// Swallow whitespace on the left / right into the token.
        let lstrip: Bool
        let rstrip: Bool
        /// Match only when not inside a word.
        let singleWord: Bool
        /// Match in the normalized text (true) or the raw text (false).
        public let normalized: Bool

        init(json: [String: Any], file: URL) throws {
            guard let id = (json["id"] as? NSNumber)?.int32Value, let content = json["content"] as? String else {
                throw PruneError(file: file, "added_tokens entry without id or content")
            }
            self.id = id
            self.content = content
            special = (json["special"] as? Bool) ?? false
            lstrip = (json["lstrip"] as? Bool) ?? false
            rstrip = (json["rstrip"] as? Bool) ?? false
            singleWord = (json["single_word"] as? Bool) ?? false
            // The library's default: special tokens are matched raw, others after normalization.
            normalized = (json["normalized"] as? Bool) ?? !special
        }
    }

    /// A piece of text after added-token matching: plain text to tokenize, or one added token.
    enum Segment {
        case text(Range<Int>)
        case token(Int32)
    }

    /// A trie of added-token contents (as Unicode scalars) with the library's matching rules.
    struct AddedTokenMatcher {
        private struct Node {
            var children: [UInt32: Int32] = [:]
            /// Index into `tokens` of the token ending here, or -1.
            var token: Int32 = -1
        }

        private var nodes = [Node()]
        private var tokens: [AddedToken] = []
        /// Quick rejection of positions whose scalar starts no token (most of them).
        private var asciiStarts = [Bool](repeating: false, count: 128)

        var isEmpty: Bool { tokens.isEmpty }

        /// A matcher over `tokens`, whose contents are first passed through `transform` (the normalizer,
        /// for tokens matched in normalized text).
        init(_ tokens: [AddedToken], transform: (String) -> String = { $0 }) {
            for token in tokens {
                let scalars = Array(transform(token.content).unicodeScalars)
                guard let first = scalars.first else { continue }
                if first.value < 128 { asciiStarts[Int(first.value)] = true }
                var node = 0
                for scalar in scalars {
                    if let child = nodes[node].children[scalar.value] {
                        node = Int(child)
                    } else {
                        nodes.append(Node())
                        nodes[node].children[scalar.value] = Int32(nodes.count - 1)
                        node = nodes.count - 1
                    }
                }
                // A later duplicate content wins, as in the library's content → id map.
                self.tokens.append(token)
                nodes[node].token = Int32(self.tokens.count - 1)
            }
        }

        /// Cuts `text[range]` into plain-text and added-token segments.
        func segments(_ text: [Unicode.Scalar], in range: Range<Int>) -> [Segment] {
            guard !tokens.isEmpty else { return [.text(range)] }
            var segments: [Segment] = []
            var textStart = range.lowerBound
            var i = range.lowerBound
            while i < range.upperBound {
                let scalar = text[i]
                if scalar.value < 128, !asciiStarts[Int(scalar.value)] { i += 1; continue }
                guard let (tokenIndex, matchEnd) = longestMatch(text, at: i, limit: range.upperBound) else {
                    i += 1
                    continue
                }
                let token = tokens[tokenIndex]
                if token.singleWord {
                    let wordBefore = i > range.lowerBound && Self.isWordScalar(text[i - 1])
                    let wordAfter = matchEnd < range.upperBound && Self.isWordScalar(text[matchEnd])
                    // The library's automaton resumes after a discarded match, not inside it.
                    if wordBefore || wordAfter { i = matchEnd; continue }
                }
                var start = i
                var end = matchEnd
                if token.lstrip {
                    // Not past the end of the previous match, which may have taken those spaces.
                    while start > textStart, text[start - 1].properties.isWhitespace { start -= 1 }
                }
                if token.rstrip {
                    while end < range.upperBound, text[end].properties.isWhitespace { end += 1 }
                }
                if textStart < start { segments.append(.text(textStart..<start)) }
                segments.append(.token(token.id))
                textStart = end
                i = end
            }
            if textStart < range.upperBound { segments.append(.text(textStart..<range.upperBound)) }
            return segments
        }

        private func longestMatch(_ text: [Unicode.Scalar], at start: Int, limit: Int) -> (Int, Int)? {
            var node = 0
            var best: (Int, Int)?
            var i = start
            while i < limit, let child = nodes[node].children[text[i].value] {
                node = Int(child)
                i += 1
                if nodes[node].token >= 0 { best = (Int(nodes[node].token), i) }
            }
            return best
        }

        /// Unicode `\w` (Alphabetic, marks, decimal digits, connector punctuation, ZWJ/ZWNJ): what the
        /// library's single_word check counts as inside a word.
        private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
            let properties = scalar.properties
            if properties.isAlphabetic || properties.isJoinControl { return true }
            switch properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
            default: return false
            }
        }
    }
}
