// A plain check that a cut or healed model still writes what the original writes: the distribution of the
// continuation's characters over classes and scripts (Latin letters, digits, spaces, punctuation, CJK,
// Cyrillic, …) against the original's continuation of the same prompt, and how much of it repeats. Perplexity
// alone missed a pruned model that switched to Chinese (LLM-Pruner #81); this catches that and degeneration
// into loops, without any other model.
import Foundation

/// The drift of one continuation from the original's.
public struct TextDrift: Codable, Equatable, Sendable {
    /// Total variation distance between the two character-class distributions, 0…1.
    public var classDistance: Double
    /// Fraction of the continuation's word 3-grams that occur earlier in it, 0…1.
    public var repetition: Double
    /// Short flags: "script changed", "repetitive"; empty when neither.
    public var flags: [String]

    /// Above these the continuation is flagged.
    public static let classThreshold = 0.25
    public static let repetitionThreshold = 0.5

    /// Compares `text` with the original model's `original` continuation of the same prompt.
    public static func measure(_ text: String, original: String) -> TextDrift {
        let a = classes(text), b = classes(original)
        let keys = Set(a.keys).union(b.keys)
        let distance = keys.reduce(0.0) { $0 + abs((a[$1] ?? 0) - (b[$1] ?? 0)) } / 2
        let rep = repetition(text)
        var flags: [String] = []
        if distance > classThreshold { flags.append("script changed") }
        if rep > repetitionThreshold && rep > repetition(original) + 0.2 { flags.append("repetitive") }
        return TextDrift(classDistance: distance, repetition: rep, flags: flags)
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
        let words = text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        guard words.count >= 4 else { return 0 }
        var seen = Set<String>(), repeated = 0, total = 0
        for i in 0..<(words.count - 2) {
            let g = words[i..<(i + 3)].joined(separator: " ")
            if seen.contains(g) { repeated += 1 } else { seen.insert(g) }
            total += 1
        }
        return Double(repeated) / Double(total)
    }
}
