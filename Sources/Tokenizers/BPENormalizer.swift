// The normalizer of tokenizer.json. Byte-level BPE files use none (GPT-2, Llama-3, SmolLM2) or NFC
// (Qwen2). NFC, alone or in a Sequence, is supported; anything else (NFKC, Replace, Prepend,
// Lowercase, …) is refused by name rather than silently skipped.
import Foundation
import Support

extension BPETokenizer {
    /// Unicode normalization applied to text between added tokens before pre-tokenization.
    struct Normalizer {
        /// Whether NFC is applied (several NFCs in a Sequence are the same as one).
        let appliesNFC: Bool

        /// Parses the `normalizer` value of tokenizer.json (nil or NSNull: identity).
        init(json: Any?, file: URL) throws {
            var appliesNFC = false
            if let json = json, !(json is NSNull) { try Self.parse(json, appliesNFC: &appliesNFC, file: file) }
            self.appliesNFC = appliesNFC
        }

        private static func parse(_ json: Any, appliesNFC: inout Bool, file: URL) throws {
            guard let object = json as? [String: Any], let type = object["type"] as? String else {
                throw PruneError(file: file, "normalizer entry has no \"type\"")
            }
            switch type {
            case "Sequence":
                guard let children = object["normalizers"] as? [Any] else {
                    throw PruneError(file: file, "normalizer Sequence has no \"normalizers\" list")
                }
                for child in children { try parse(child, appliesNFC: &appliesNFC, file: file) }
            case "NFC":
                appliesNFC = true
            default:
                throw PruneError(file: file, "normalizer type \"\(type)\" is not supported (only NFC)")
            }
        }

        var isIdentity: Bool { !appliesNFC }

        func normalize(_ text: String) -> String {
            guard appliesNFC else { return text }
            // The standard library's NFC (the one String comparison uses); Foundation's
            // precomposedStringWithCanonicalMapping mis-composes supplementary-plane scalars on Linux
            // (U+E004B + U+030C becomes "Ǩ").
            return String(decoding: text._nfcCodeUnits, as: UTF8.self)
        }
    }
}
