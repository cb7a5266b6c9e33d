// Byte-level BPE against the Hugging Face tokenizers library: SmolLM2's reference ids/tokens/decodings
// from Tests/Fixtures, round trips on generated text, a Llama-3-style configuration (Split regex,
// ignore_merges, TemplateProcessing BOS, "a b" merges) whose expected ids come from tokenizers 0.23.3,
// and the errors for tokenizers we do not handle.
import Foundation
import Support
import TestSupport
import Tokenizers
import XCTest
@testable import Tokenizers

final class BPETokenizerTests: XCTestCase {
    private static let smolDirectory = Fixtures.file("tokenizers/smollm2")

    /// Loaded once: parsing 49k merges is the slow part of every test here.
    private static let smol = Result { try BPETokenizer(directory: smolDirectory) }

    private func smolTokenizer() throws -> BPETokenizer { try Self.smol.get() }

    private func reference() throws -> [String: Any] {
        let url = Self.smolDirectory.appendingPathComponent("reference.json")
        let data = try Data(contentsOf: url)  // a missing reference fails the test, it does not skip it
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    // MARK: SmolLM2 reference

    func testReferenceCasesMatchTokenizersLibrary() throws {
        let tokenizer = try smolTokenizer()
        let cases = try XCTUnwrap(try reference()["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 10)
        for entry in cases {
            let text = try XCTUnwrap(entry["text"] as? String)
            let ids = try XCTUnwrap(entry["ids"] as? [Int]).map(Int32.init)
            let tokens = try XCTUnwrap(entry["tokens"] as? [String])
            let decoded = try XCTUnwrap(entry["decoded"] as? String)
            let encoded = tokenizer.encode(text, addSpecialTokens: true)
            XCTAssertEqual(encoded, ids, "ids of \(text.debugDescription)")
            XCTAssertEqual(tokenizer.pieces(encoded), tokens, "tokens of \(text.debugDescription)")
            XCTAssertEqual(tokenizer.decode(ids), decoded, "decoding of \(text.debugDescription)")
        }
    }

    func testReferenceMetadata() throws {
        let tokenizer = try smolTokenizer()
        let reference = try reference()
        XCTAssertEqual(tokenizer.vocabularySize, reference["vocab_size"] as? Int)
        XCTAssertEqual(tokenizer.bosToken, reference["bos_token"] as? String)
        XCTAssertEqual(tokenizer.eosToken, reference["eos_token"] as? String)
        XCTAssertEqual(tokenizer.bosTokenID, tokenizer.encode("<|im_start|>", addSpecialTokens: false).first)
        XCTAssertEqual(tokenizer.eosTokenID, tokenizer.encode("<|im_end|>", addSpecialTokens: false).first)
        XCTAssertFalse(tokenizer.addsBOS, "SmolLM2's add_bos_token is false")
        XCTAssertEqual(tokenizer.encode("Hello world", addSpecialTokens: true),
                       tokenizer.encode("Hello world", addSpecialTokens: false))
        XCTAssertTrue(tokenizer.chatTemplate?.contains("<|im_start|>") ?? false)
    }

    func testAddBOSTokenInConfigPrependsBOS() throws {
        let directory = try Fixtures.temporaryDirectory("bpe-bos")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(at: Self.smolDirectory.appendingPathComponent("tokenizer.json"),
                                         to: directory.appendingPathComponent("tokenizer.json"))
        try #"{"bos_token": {"content": "<|endoftext|>"}, "add_bos_token": true}"#
            .write(to: directory.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let tokenizer = try BPETokenizer(directory: directory)
        XCTAssertTrue(tokenizer.addsBOS)
        XCTAssertEqual(tokenizer.bosTokenID, 0)
        XCTAssertEqual(tokenizer.encode("Hello world"), [0, 19556, 905])
        XCTAssertEqual(tokenizer.encode("Hello world", addSpecialTokens: false), [19556, 905])
        XCTAssertNil(tokenizer.chatTemplate)
    }

    func testTokenizerLoaderPicksBPEForTokenizerJSON() throws {
        XCTAssertTrue(try TokenizerLoader.load(directory: Self.smolDirectory) is BPETokenizer)
    }

    // MARK: round trips

    func testDecodeInvertsEncodeOnGeneratedText() throws {
        let tokenizer = try smolTokenizer()
        var random = SeededGenerator(seed: 0x5EED)
        let pools: [[String]] = [
            ["the", "Hello", "world", "don't", "It's", "aaaa", "x", "Lily", "naïve", "ÉCOLE"],
            ["0", "7", "42", "1234567890", "3.14", "½", "²", "٣"],
            [" ", "  ", "     ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u{A0}", "\u{2009}", "\u{3000}"],
            [".", ",", "!", "?", "'", "\"", "(", ")", "{", "}", "#", "**", "->", "://", "<", ">"],
            ["日本語", "の", "テキスト", "中文", "한국어", "русский", "Ελληνικά", "العربية", "e\u{301}"],
            ["🦙", "🔥", "👩‍👩‍👧", "🇫🇷", "👍🏽", "\u{200D}", "𝔘"],
            ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "<|im_start", "im_end|>"],
        ]
        for _ in 0..<400 {
            var text = ""
            for _ in 0..<random.next(below: 16) {
                let pool = pools[random.next(below: pools.count)]
                text += pool[random.next(below: pool.count)]
            }
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            XCTAssertEqual(tokenizer.decode(ids), text, "round trip of \(text.debugDescription)")
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabularySize })
        }
    }

    func testSpecialTokensAreMatchedWholeAndCanBeSkipped() throws {
        let tokenizer = try smolTokenizer()
        let ids = tokenizer.encode("a<|im_end|>b<|im_end", addSpecialTokens: false)
        XCTAssertEqual(ids.filter { $0 == 2 }.count, 1, "only the complete <|im_end|> is the special token")
        XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: true), "ab<|im_end")
        XCTAssertEqual(tokenizer.decode(ids, skipSpecialTokens: false), "a<|im_end|>b<|im_end")
    }

    func testDecodingACutCharacterGivesReplacementCharacter() throws {
        let tokenizer = try smolTokenizer()
        let ids = tokenizer.encode("🦙", addSpecialTokens: false)
        XCTAssertGreaterThan(ids.count, 1)
        XCTAssertEqual(tokenizer.decode(Array(ids.dropLast())), "\u{FFFD}")
    }

    // MARK: other configurations

    /// SmolLM2's vocabulary under Llama-3's pre-tokenizer, ignore_merges, TemplateProcessing BOS and
    /// "a b" merge strings. Expected ids: tokenizers 0.23.3 on the same JSON.
    func testLlama3StyleConfigurationMatchesTokenizersLibrary() throws {
        let directory = try Fixtures.temporaryDirectory("bpe-llama3")
        defer { try? FileManager.default.removeItem(at: directory) }
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(
            with: Data(contentsOf: Self.smolDirectory.appendingPathComponent("tokenizer.json"))) as? [String: Any])
        var model = try XCTUnwrap(json["model"] as? [String: Any])
        let merges = try XCTUnwrap(model["merges"] as? [[String]])
        model["merges"] = merges.map { $0.joined(separator: " ") }
        model["ignore_merges"] = true
        json["model"] = model
        json["pre_tokenizer"] = [
            "type": "Sequence",
            "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": BPETokenizer.SplitPattern.llama3Source],
                 "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false],
            ],
        ]
        json["post_processor"] = [
            "type": "TemplateProcessing",
            "single": [["SpecialToken": ["id": "<|im_start|>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
            "pair": [] as [Any],
            "special_tokens": ["<|im_start|>": ["id": "<|im_start|>", "ids": [1], "tokens": ["<|im_start|>"]]],
        ]
        try JSONSerialization.data(withJSONObject: json).write(to: directory.appendingPathComponent("tokenizer.json"))
        let tokenizer = try BPETokenizer(directory: directory)

        XCTAssertTrue(tokenizer.addsBOS, "no tokenizer_config.json: the post-processor template decides")
        XCTAssertEqual(tokenizer.bosTokenID, 1)
        let expected: [(String, [Int32])] = [
            ("Hello world", [1, 19556, 905]),
            ("It'S 12345 apples!\n\n  and\r\n\tTHEY'LL go",
             [1, 1589, 23, 67, 216, 33, 34, 35, 36, 37, 13855, 17, 1116, 216, 284, 2738, 197, 15964, 73, 23, 16421, 685]),
            ("日本語 🦙 x", [1, 23274, 115, 40993, 179, 120, 248, 15107, 116, 243, 1792]),
            ("<|im_end|>  spaced   out  ", [1, 2, 216, 23861, 256, 578, 256]),
            ("    return x ** 2  # square", [1, 333, 1003, 1792, 1903, 216, 34, 216, 907, 5222]),
        ]
        for (text, ids) in expected {
            XCTAssertEqual(tokenizer.encode(text), ids, "ids of \(text.debugDescription)")
            XCTAssertEqual(tokenizer.decode(ids), "<|im_start|>" + text)
        }
    }

    /// The hand-written GPT-2 and Llama-3 matchers split exactly as the same regexes do in ICU (with
    /// \s widened to Oniguruma's set), on generated text full of the tricky classes.
    func testHandWrittenRegexesAgreeWithICU() throws {
        let file = URL(fileURLWithPath: "/test")
        let alphabet: [Unicode.Scalar] = ["a", "Z", "é", "ß", "日", "ſ", "'", "s", "S", "l", "L", "r", "e", "v", "d",
                                          "t", "m", "1", "9", "½", "٣", " ", " ", "\t", "\n", "\r", "\u{0B}",
                                          "\u{85}", "\u{A0}", "\u{2009}", "\u{2028}", ".", "!", "-", "🦙", "\u{301}"]
        var random = SeededGenerator(seed: 99)
        let pairs: [(BPETokenizer.SplitPattern, String)] = [
            (.gpt2, BPETokenizer.SplitPattern.gpt2Source),
            (.llama3(maxDigits: 3), BPETokenizer.SplitPattern.llama3Source),
            (.llama3(maxDigits: 1), BPETokenizer.SplitPattern.qwen2Source),
        ]
        for (handWritten, source) in pairs {
            if case .regex = try BPETokenizer.SplitPattern.regex(source, file: file) {
                XCTFail("\(source) should be recognised as a known pattern")
            }
            let icu = BPETokenizer.SplitPattern.regex(try BPETokenizer.SplitPattern.icuRegex(source, file: file))
            for _ in 0..<500 {
                let text = (0..<random.next(below: 24)).map { _ in alphabet[random.next(below: alphabet.count)] }
                let expected = icu.matches(in: text[...]).map { "\($0.range)\($0.isMatch)" }
                let actual = handWritten.matches(in: text[...]).map { "\($0.range)\($0.isMatch)" }
                XCTAssertEqual(actual, expected, "\(source) on \(String(String.UnicodeScalarView(text)).debugDescription)")
            }
        }
    }

    // MARK: refusals

    func testUnsupportedModelTypeIsRefusedByName() throws {
        for kind in ["Unigram", "WordPiece"] {
            let directory = try Fixtures.temporaryDirectory("bpe-\(kind)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let json = #"{"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,"#
                + #" "post_processor": null, "decoder": null, "model": {"type": "\#(kind)", "vocab": []}}"#
            try json.write(to: directory.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try BPETokenizer(directory: directory)) { error in
                let pruneError = error as? PruneError
                XCTAssertNotNil(pruneError, "a PruneError, not \(error)")
                XCTAssertTrue(pruneError?.problem.contains(kind) ?? false, "\(error) names \(kind)")
                XCTAssertTrue(pruneError?.subject.hasSuffix("tokenizer.json") ?? false)
            }
        }
    }

    func testSentencePieceStyleBPEIsRefusedAsNotByteLevel() throws {
        // stories260K's tokenizer.json is a BPE converted from SentencePiece (Metaspace-style, byte fallback).
        let directory = Fixtures.stories260K
        XCTAssertThrowsError(try BPETokenizer(directory: directory)) { error in
            XCTAssertTrue((error as? PruneError)?.problem.contains("byte-level") ?? false, "\(error)")
        }
    }

    func testMissingTokenizerJSONIsReported() throws {
        let directory = try Fixtures.temporaryDirectory("bpe-empty")
        defer { try? FileManager.default.removeItem(at: directory) }
        XCTAssertThrowsError(try BPETokenizer(directory: directory)) { error in
            XCTAssertEqual((error as? PruneError)?.problem, "not found")
        }
    }
}

extension SeededGenerator {
    /// A draw in 0..<bound (modulo: the generated test text stays what it has always been).
    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
