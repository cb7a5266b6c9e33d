// Streamed generation text equals what transformers prints: decode(prompt + continuation) minus
// decode(prompt), for SentencePiece (which drops the leading space of a decode) and byte-level BPE
// (whose tokens can split a UTF-8 character).
import Foundation
import TestSupport
import XCTest
@testable import Tokenizers

final class StreamingDecoderTests: XCTestCase {
    /// Streams `continuation` after `prompt` one id at a time; the chunks and their concatenation.
    func stream(_ tokenizer: Tokenizer, prompt: [Int32], continuation: [Int32]) -> (chunks: [String], text: String) {
        var decoder = StreamingDecoder(tokenizer: tokenizer, prompt: prompt)
        var chunks = continuation.map { decoder.append($0) }
        chunks.append(decoder.finish())
        return (chunks, chunks.joined())
    }

    /// What transformers shows after the prompt: the full decoding with the decoded prompt taken off.
    func expectedSuffix(_ tokenizer: Tokenizer, prompt: [Int32], continuation: [Int32]) throws -> String {
        let whole = tokenizer.decode(prompt + continuation, skipSpecialTokens: true)
        let head = tokenizer.decode(prompt, skipSpecialTokens: true)
        XCTAssertTrue(whole.hasPrefix(head), "\(whole.debugDescription) starts with \(head.debugDescription)")
        return String(whole.dropFirst(head.count))
    }

    func testSentencePieceKeepsTheSpaceAfterThePrompt() throws {
        let tokenizer = try TokenizerLoader.load(directory: Fixtures.stories260K)
        let prompt = tokenizer.encode("Once")
        let all = tokenizer.encode("Once upon a time, there was a little girl.")
        XCTAssertEqual(Array(all.prefix(prompt.count)), prompt)
        let continuation = Array(all.dropFirst(prompt.count))
        let streamed = stream(tokenizer, prompt: prompt, continuation: continuation)
        XCTAssertEqual(streamed.text, " upon a time, there was a little girl.")
        XCTAssertEqual(streamed.text, try expectedSuffix(tokenizer, prompt: prompt, continuation: continuation))
        // Decoding the continuation alone (what was done before) loses that space.
        XCTAssertEqual(tokenizer.decode(continuation, skipSpecialTokens: true), "upon a time, there was a little girl.")
    }

    func testByteLevelBPEStreamsWholeCharactersAndMatchesFullDecode() throws {
        let tokenizer = try BPETokenizer(directory: Fixtures.file("tokenizers/smollm2"))
        let prompt = tokenizer.encode("Say:")
        for text in [" hello world", " emoji 🦙🔥 done", " Ünïcödé ✓ 日本語のテキスト", " ZWJ 👩\u{200D}👩\u{200D}👧 family"] {
            let continuation = tokenizer.encode(text, addSpecialTokens: false)
            let streamed = stream(tokenizer, prompt: prompt, continuation: continuation)
            XCTAssertEqual(streamed.text, text)
            XCTAssertEqual(streamed.text, try expectedSuffix(tokenizer, prompt: prompt, continuation: continuation))
            for chunk in streamed.chunks { XCTAssertFalse(chunk.contains("\u{FFFD}"), "half a character printed in \(text)") }
        }
        // The llama emoji takes more than one byte-level token: some chunk must have been held back.
        let llama = tokenizer.encode("🦙", addSpecialTokens: false)
        XCTAssertGreaterThan(llama.count, 1)
        XCTAssertTrue(stream(tokenizer, prompt: prompt, continuation: llama).chunks.contains(""))
    }

    func testSpecialTokensAreLeftOutOfTheStream() throws {
        let tokenizer = try BPETokenizer(directory: Fixtures.file("tokenizers/smollm2"))
        let prompt = tokenizer.encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", addSpecialTokens: false)
        let continuation = tokenizer.encode("Hello!<|im_end|>", addSpecialTokens: false)
        XCTAssertEqual(stream(tokenizer, prompt: prompt, continuation: continuation).text, "Hello!")
    }

    func testAnIncompleteCharacterAtTheEndIsFlushedByFinish() throws {
        let tokenizer = try BPETokenizer(directory: Fixtures.file("tokenizers/smollm2"))
        let llama = tokenizer.encode("🦙", addSpecialTokens: false)
        var decoder = StreamingDecoder(tokenizer: tokenizer, prompt: tokenizer.encode("a"))
        XCTAssertEqual(decoder.append(llama[0]), "")
        let left = decoder.finish()
        XCTAssertTrue(left.hasPrefix("\u{FFFD}"), left.debugDescription)
        XCTAssertEqual(left, String(tokenizer.decode(tokenizer.encode("a") + [llama[0]]).dropFirst(1)))
        XCTAssertEqual(decoder.finish(), "", "nothing is handed out twice")
    }
}
