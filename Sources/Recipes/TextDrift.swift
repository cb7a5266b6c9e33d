// A plain check that a cut or healed model still writes what the original writes: the distribution of the
// continuation's characters over classes and scripts (Latin letters, digits, spaces, punctuation, CJK,
// Cyrillic, …) against the original's continuation of the same prompt, and how much of it repeats. Perplexity
// alone missed a pruned model that switched to Chinese (LLM-Pruner #81); this catches that and degeneration
// into loops (repeated words and 3-grams, one letter many times over) or into byte soup (bytes that are not
// UTF-8, mostly non-letters), without any other model.
import Foundation

/// The drift of one continuation from the original's.
public struct TextDrift: Codable, Equatable, Sendable {
    /// Total variation distance between the two character-class distributions, 0…1.
    public var classDistance: Double
    /// Fraction of the continuation's word 3-grams (case and punctuation ignored) that occur earlier in it, 0…1.
    public var repetition: Double
    /// Short flags: "script changed", "repetitive", "repeated words", "character run", "byte soup"; empty when none.
    public var flags: [String]

    /// Above these the continuation is flagged.
    public static let classThreshold = 0.25
    public static let repetitionThreshold = 0.5
    /// A word following itself twice ("And And … and And") is a stutter; once can be English ("had had").
    public static let stutterLimit = 2
    /// One word as more than this share of five or more words ("Abrah, And And Abrah, And").
    public static let dominantWordShare = 0.4
    /// The same letter this many times in a row ("Abrahhhhah"): English stops at two.
    public static let letterRunLimit = 4
    /// Any other non-space character this many times in a row ("!!!!!!!!"), leaving room for rules ("----").
    public static let symbolRunLimit = 8
    /// Letters below this share of the non-space characters, where the original's are above it, is byte soup.
    public static let letterShareFloor = 0.5
    /// Changes with the checks, so that a rerun measures its continuations again (the generate stage's key).
    public static let version = 2

    /// Compares `text` with the original model's `original` continuation of the same prompt.
    public static func measure(_ text: String, original: String) -> TextDrift {
        let a = classes(text), b = classes(original)
        let keys = Set(a.keys).union(b.keys)
        let distance = keys.reduce(0.0) { $0 + abs((a[$1] ?? 0) - (b[$1] ?? 0)) } / 2
        let rep = repetition(text)
        var flags: [String] = []
        if distance > classThreshold { flags.append("script changed") }
        if rep > repetitionThreshold && rep > repetition(original) + 0.2 { flags.append("repetitive") }
        if repeatsWords(text) { flags.append("repeated words") }
        if longestRun(text, letters: true) >= letterRunLimit || longestRun(text, letters: false) >= symbolRunLimit {
            flags.append("character run")
        }
        if invalidCharacters(text) > 0 || (letterShare(text) < letterShareFloor && letterShare(original) >= letterShareFloor) {
            flags.append("byte soup")
        }
        return TextDrift(classDistance: distance, repetition: rep, flags: flags)
    }

    /// The words of `text`, lowercased and without the punctuation around them (", And" and "and" are one word).
    static func words(_ text: String) -> [String] {
        text.split(whereSeparator: { $0.isWhitespace })
            .map { $0.trimmingCharacters(in: .punctuationCharacters.union(.symbols)).lowercased() }
            .filter { !$0.isEmpty }
    }

    /// Whether a word follows itself `stutterLimit` times, or one word crowds out the others.
    static func repeatsWords(_ text: String) -> Bool {
        let w = words(text)
        let stutters = zip(w, w.dropFirst()).filter { $0 == $1 }.count
        if stutters >= stutterLimit { return true }
        guard w.count >= 5 else { return false }
        let most = Dictionary(grouping: w, by: { $0 }).values.map(\.count).max() ?? 0
        return Double(most) / Double(w.count) > dominantWordShare
    }

    /// The longest run of one character (case ignored) among letters, or among the characters that are neither
    /// letters, digits ("1000000000" is a number) nor spaces.
    static func longestRun(_ text: String, letters: Bool) -> Int {
        var longest = 0, run = 0
        var previous: Character?
        for c in text.lowercased() {
            guard letters ? c.isLetter : !(c.isLetter || c.isNumber || c.isWhitespace) else { previous = nil; run = 0; continue }
            run = c == previous ? run + 1 : 1
            previous = c
            longest = max(longest, run)
        }
        return longest
    }

    /// Replacement characters (bytes that were not UTF-8), controls other than tab and newline, unassigned and
    /// private-use code points. One replacement character at the very end is a character the token budget cut
    /// in half, not soup, and is not counted.
    static func invalidCharacters(_ text: String) -> Int {
        var scalars = Array(text.unicodeScalars)
        if scalars.last == "\u{FFFD}" { scalars.removeLast() }
        return scalars.filter { u in
            if u == "\u{FFFD}" { return true }
            switch u.properties.generalCategory {
            case .control: return !["\t", "\n", "\r"].contains(u)
            case .unassigned, .privateUse, .surrogate: return true
            default: return false
            }
        }.count
    }

    /// Letters among the non-space characters (1 for text without any).
    static func letterShare(_ text: String) -> Double {
        let visible = text.filter { !$0.isWhitespace }
        return visible.isEmpty ? 1 : Double(visible.filter(\.isLetter).count) / Double(visible.count)
    }

    /// The share of each character class in `text`.
    static func classes(_ text: String) -> [String: Double] {
        var counts: [String: Double] = [:]
        var n = 0.0
        for u in text.unicodeScalars {
            counts[characterClass(u), default: 0] += 1
            n += 1
        }
        return n == 0 ? [:] : counts.mapValues { $0 / n }
    }

    static func characterClass(_ u: Unicode.Scalar) -> String {
        let v = u.value
        switch v {
        case 0x41...0x5A, 0x61...0x7A: return "latin"
        case 0x30...0x39: return "digit"
        case 0x20, 0x09, 0x0A, 0x0D: return "space"
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return "punctuation"
        case 0xC0...0x24F: return "latin"
        case 0x370...0x3FF: return "greek"
        case 0x400...0x4FF: return "cyrillic"
        case 0x590...0x5FF: return "hebrew"
        case 0x600...0x6FF: return "arabic"
        case 0x3040...0x30FF: return "kana"
        case 0x4E00...0x9FFF, 0x3400...0x4DBF: return "cjk"
        case 0xAC00...0xD7AF: return "hangul"
        case 0xFFFD: return "replacement"
        default: return u.properties.isAlphabetic ? "other letter" : "other"
        }
    }

    /// Fraction of word 3-grams already seen earlier in `text` (0 with fewer than four words).
    static func repetition(_ text: String) -> Double {
        let words = Self.words(text)
        guard words.count >= 4 else { return 0 }
        var seen = Set<[String]>(), repeated = 0, total = 0
        for i in 0..<(words.count - 2) {
            let g = Array(words[i..<(i + 3)])
            if seen.contains(g) { repeated += 1 } else { seen.insert(g) }
            total += 1
        }
        return Double(repeated) / Double(total)
    }
}
