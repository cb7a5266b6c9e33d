// tokenizer.ggml.pre: the name under which llama.cpp (src/llama-vocab.cpp) knows a byte-level BPE pre-tokenizer. It
// is derived from what tokenizer.json declares — the pre-tokenizer's steps, the normalizer, ignore_merges and
// clean_up_tokenization_spaces, each of which the named llama.cpp variant fixes — never guessed: a declaration not in
// the table is refused in one line, since llama.cpp would otherwise split text into other tokens than ours.
// (convert_hf_to_gguf.py finds the name by hashing a tokenization instead; the names here are the ones it gives
// GPT-2, SmolLM/StarCoder, Llama-3 and Qwen2.)
import Foundation
import Support
import Tokenizers

/// llama.cpp's name for a BPE tokenizer's pre-tokenizer.
public enum GGUFPreTokenizer {
    /// One llama.cpp pre-tokenizer and the declaration that behaves as it does.
    struct Known {
        let name: String
        let steps: [String]
        let appliesNFC: Bool
        let ignoresMerges: Bool
        let cleansUpSpaces: Bool
    }

    static let byteLevelRegex = "ByteLevel(add_prefix_space: false, use_regex: true)"
    static let byteLevelOnly = "ByteLevel(add_prefix_space: false, use_regex: false)"

    /// llama.cpp's variants with the declarations that match them: its regexes (llm_tokenizer_bpe) and the
    /// ignore_merges / clean_spaces it sets for each name.
    static let known: [Known] = [
        Known(name: "gpt-2", steps: [byteLevelRegex], appliesNFC: false, ignoresMerges: false, cleansUpSpaces: true),
        Known(name: "smollm", steps: ["Digits(individual_digits: true)", byteLevelRegex], appliesNFC: false, ignoresMerges: false,
              cleansUpSpaces: false),
        Known(name: "starcoder", steps: ["Digits(individual_digits: true)", byteLevelRegex], appliesNFC: false, ignoresMerges: false,
              cleansUpSpaces: true),
        Known(name: "llama-bpe", steps: ["Split(llama3 regex, Isolated, invert: false)", byteLevelOnly], appliesNFC: false,
              ignoresMerges: true, cleansUpSpaces: true),
        Known(name: "qwen2", steps: ["Split(qwen2 regex, Isolated, invert: false)", byteLevelOnly], appliesNFC: true,
              ignoresMerges: false, cleansUpSpaces: false),
    ]

    /// The name for `tokenizer` (read from `file`, named in the refusal).
    public static func name(of tokenizer: BPETokenizer, file: URL) throws -> String {
        let steps = tokenizer.preTokenizerDeclaration
        if let match = known.first(where: {
            $0.steps == steps && $0.appliesNFC == tokenizer.appliesNFC && $0.ignoresMerges == tokenizer.ignoresMerges
                && $0.cleansUpSpaces == tokenizer.cleansUpSpaces
        }) {
            return match.name
        }
        let declared = "[\(steps.joined(separator: ", "))]" + (tokenizer.appliesNFC ? " with NFC" : "")
            + ", ignore_merges \(tokenizer.ignoresMerges), clean_up_tokenization_spaces \(tokenizer.cleansUpSpaces)"
        throw PruneError(file: file, "pre-tokenizer \(declared) has no llama.cpp name (known: \(known.map(\.name).joined(separator: ", ")))")
    }
}
