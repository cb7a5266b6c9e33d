// Small checkpoints with a vocabulary for GGUF files: the tiny random checkpoints of Tests/Fixtures/checkpoints (96 ids,
// no tokenizer) given a byte-level BPE tokenizer of our own making — three special tokens, the byte-level characters of
// lowercase text, and merges of a few common pairs — and stories260K copied.
import Foundation
import Support
import TestSupport

enum TinyCheckpoints {
    /// Special tokens first (ids 0–2: unknown, BOS, EOS, as the fixtures' config.json numbers BOS 1 and EOS 2).
    static let specials = ["<unk>", "<|bos|>", "<|eos|>"]
    /// Byte-level spellings: "Ġ" is the space, "Ċ" the newline.
    static let characters = Array("abcdefghijklmnopqrstuvwxyz.,!?'0123456789").map(String.init) + ["Ġ", "Ċ"]
    /// Merges, highest priority first; each result is in the vocabulary.
    static let merges: [(String, String)] = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("a", "t"),
                                             ("Ġ", "s"), ("Ġs", "at"), ("o", "n"), ("e", "r"), ("Ġ", "c"), ("Ġc", "at")]

    /// Text the tiny tokenizer covers.
    static let texts = ["the cat sat on the mat.", "then, in 2024 a cat!", "hi\nthere"]

    /// A copy of the fixture checkpoint `name` in `scratch`, with the tiny tokenizer written beside it.
    /// `preTokenizer`: tokenizer.json's pre_tokenizer object (default: GPT-2's ByteLevel).
    static func fixture(_ name: String, in scratch: URL, preTokenizer: [String: Any]? = nil) throws -> URL {
        let directory = scratch.appendingPathComponent(name)
        try FileManager.default.copyItem(at: Fixtures.file("checkpoints/\(name)"), to: directory)
        try writeTokenizer(to: directory, preTokenizer: preTokenizer)
        return directory
    }

    /// tokenizer.json and tokenizer_config.json of the tiny byte-level BPE tokenizer.
    static func writeTokenizer(to directory: URL, preTokenizer: [String: Any]? = nil) throws {
        var vocabulary: [String: Int] = [:]
        for token in specials + characters + merges.map({ $0.0 + $0.1 }) where vocabulary[token] == nil {
            vocabulary[token] = vocabulary.count
        }
        let added = specials.enumerated().map { id, content -> [String: Any] in
            ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
        }
        let tokenizer: [String: Any] = [
            "version": "1.0", "added_tokens": added, "normalizer": NSNull(),
            "pre_tokenizer": preTokenizer ?? ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "post_processor": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": "<unk>", "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocabulary, "merges": merges.map { [$0.0, $0.1] }],
        ]
        let config: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|bos|>", "eos_token": "<|eos|>",
                                     "unk_token": "<unk>", "clean_up_tokenization_spaces": true, "add_bos_token": true,
                                     "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"]
        for (file, object) in [("tokenizer.json", tokenizer), ("tokenizer_config.json", config)] {
            try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: directory.appendingPathComponent(file))
        }
    }
}
