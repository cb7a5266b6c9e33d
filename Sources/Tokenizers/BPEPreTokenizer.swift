// The pre_tokenizer of tokenizer.json: cuts normalized text into the words BPE runs on. Supported:
// Sequence, Split (String or Regex pattern, all five behaviors, invert), Digits and ByteLevel
// (add_prefix_space, use_regex). Each step refines every piece the previous step produced, exactly as
// the tokenizers library's PreTokenizedString does; empty pieces are dropped.
import Foundation
import Support

extension BPETokenizer {
    /// What happens to the matched parts of a Split (the tokenizers library's SplitDelimiterBehavior).
    enum SplitBehavior: String {
        case removed = "Removed"
        case isolated = "Isolated"
        case mergedWithPrevious = "MergedWithPrevious"
        case mergedWithNext = "MergedWithNext"
        case contiguous = "Contiguous"
    }

    /// The pre-tokenizer pipeline.
    struct PreTokenizer {
        enum Step {
            case split(SplitPattern, SplitBehavior, invert: Bool)
            /// ByteLevel: optionally prefix a space, then optionally split with GPT-2's regex.
            case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
        }

        let steps: [Step]
        /// Whether a ByteLevel step is present, i.e. the words are mapped to byte-level characters.
        let isByteLevel: Bool
        /// Each step as the file declares it, in one canonical spelling ("Digits(individual_digits: true)",
        /// "Split(llama3 regex, Isolated, invert: false)"): what other tools' names for a pre-tokenizer are matched on.
        let declaration: [String]

        /// Parses the `pre_tokenizer` value of tokenizer.json (nil or NSNull: no splitting).
        init(json: Any?, file: URL) throws {
            var steps: [Step] = []
            var declaration: [String] = []
            if let json = json, !(json is NSNull) { try Self.parse(json, into: &steps, declaring: &declaration, file: file) }
            self.steps = steps
            self.declaration = declaration
            isByteLevel = steps.contains { if case .byteLevel = $0 { return true } else { return false } }
        }

        private static func parse(_ json: Any, into steps: inout [Step], declaring declaration: inout [String], file: URL) throws {
            guard let object = json as? [String: Any], let type = object["type"] as? String else {
                throw PruneError(file: file, "pre_tokenizer entry has no \"type\"")
            }
            switch type {
            case "Sequence":
                guard let children = object["pretokenizers"] as? [Any] else {
                    throw PruneError(file: file, "pre_tokenizer Sequence has no \"pretokenizers\" list")
                }
                for child in children { try parse(child, into: &steps, declaring: &declaration, file: file) }
            case "ByteLevel":
                let addPrefixSpace = (object["add_prefix_space"] as? Bool) ?? true, useRegex = (object["use_regex"] as? Bool) ?? true
                steps.append(.byteLevel(addPrefixSpace: addPrefixSpace, useRegex: useRegex))
                declaration.append("ByteLevel(add_prefix_space: \(addPrefixSpace), use_regex: \(useRegex))")
            case "Digits":
                let individual = (object["individual_digits"] as? Bool) ?? false
                steps.append(.split(.scalar(ScalarClass.isNumber), individual ? .isolated : .contiguous, invert: false))
                declaration.append("Digits(individual_digits: \(individual))")
            case "Split":
                let pattern: SplitPattern
                let patternName: String
                let patternObject = object["pattern"] as? [String: Any]
                if let literal = patternObject?["String"] as? String {
                    pattern = .literal(Array(literal.unicodeScalars))
                    patternName = "String \(literal.debugDescription)"
                } else if let regex = patternObject?["Regex"] as? String {
                    pattern = try SplitPattern.regex(regex, file: file)
                    patternName = SplitPattern.name(ofRegex: regex)
                } else {
                    throw PruneError(file: file, "pre_tokenizer Split has no String or Regex pattern")
                }
                let behaviorName = (object["behavior"] as? String) ?? "Isolated"
                guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                    throw PruneError(file: file, "pre_tokenizer Split behavior \"\(behaviorName)\" is not supported")
                }
                let invert = (object["invert"] as? Bool) ?? false
                steps.append(.split(pattern, behavior, invert: invert))
                declaration.append("Split(\(patternName), \(behavior.rawValue), invert: \(invert))")
            default:
                throw PruneError(file: file, "pre_tokenizer type \"\(type)\" is not supported")
            }
        }

        /// The words of `text`, in order.
        func words(_ text: ArraySlice<Unicode.Scalar>) -> [ArraySlice<Unicode.Scalar>] {
            var pieces: [ArraySlice<Unicode.Scalar>] = text.isEmpty ? [] : [text]
            for step in steps {
                var refined: [ArraySlice<Unicode.Scalar>] = []
                refined.reserveCapacity(pieces.count)
                for piece in pieces {
                    switch step {
                    case let .split(pattern, behavior, invert):
                        Self.split(piece, pattern, behavior, invert: invert, into: &refined)
                    case let .byteLevel(addPrefixSpace, useRegex):
                        var piece = piece
                        if addPrefixSpace, piece.first != " " { piece = ([" "] + piece)[...] }
                        if useRegex {
                            Self.split(piece, .gpt2, .isolated, invert: false, into: &refined)
                        } else {
                            refined.append(piece)
                        }
                    }
                }
                pieces = refined
            }
            return pieces
        }

        /// Appends the non-empty parts of `piece` cut by `pattern` under `behavior`.
        static func split(_ piece: ArraySlice<Unicode.Scalar>, _ pattern: SplitPattern, _ behavior: SplitBehavior,
                          invert: Bool, into output: inout [ArraySlice<Unicode.Scalar>]) {
            var matches = pattern.matches(in: piece)
            if invert { matches = matches.map { ($0.range, !$0.isMatch) } }
            var ranges: [Range<Int>] = []
            switch behavior {
            case .isolated:
                ranges = matches.map(\.range)
            case .removed:
                ranges = matches.filter { !$0.isMatch }.map(\.range)
            case .contiguous:
                // Runs of matches (or of non-matches) fuse.
                var previousMatch = false
                for (range, isMatch) in matches {
                    if isMatch == previousMatch, let last = ranges.last {
                        ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
                    } else {
                        ranges.append(range)
                    }
                    previousMatch = isMatch
                }
            case .mergedWithPrevious:
                var previousMatch = false
                for (range, isMatch) in matches {
                    if isMatch, !previousMatch, let last = ranges.last {
                        ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
                    } else {
                        ranges.append(range)
                    }
                    previousMatch = isMatch
                }
            case .mergedWithNext:
                var previousMatch = false
                for (range, isMatch) in matches.reversed() {
                    if isMatch, !previousMatch, let last = ranges.last {
                        ranges[ranges.count - 1] = range.lowerBound..<last.upperBound
                    } else {
                        ranges.append(range)
                    }
                    previousMatch = isMatch
                }
                ranges.reverse()
            }
            for range in ranges where !range.isEmpty { output.append(piece[range]) }
        }
    }
}
