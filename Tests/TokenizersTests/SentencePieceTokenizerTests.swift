// SentencePiece through libsentencepiece equals the reference tokenizations (Llama-2's tokenizer and
// stories260K's, whose token_ids come from transformers with BOS).
import Foundation
import Support
import TestSupport
import Tokenizers
import XCTest

final class SentencePieceTokenizerTests: XCTestCase {
    func testLlama2ReferenceCases() throws {
        let dir = Fixtures.file("tokenizers/llama2")
        let ref = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("reference.json"))) as! [String: Any]
        let tok = try SentencePieceTokenizer(model: dir.appendingPathComponent("tokenizer.model"))
        XCTAssertEqual(tok.vocabularySize, 32000)
        XCTAssertEqual(tok.bosTokenID, 1)
        let cases = ref["cases"] as! [[String: Any]]
        XCTAssertGreaterThan(cases.count, 3)
        for c in cases {
            let text = c["text"] as! String
            let ids = (c["ids_without_bos"] as! [NSNumber]).map { Int32(truncating: $0) }
            XCTAssertEqual(tok.encode(text, addSpecialTokens: false), ids, text)
            XCTAssertEqual(tok.encode(text), [1] + ids, "BOS is prepended as transformers does")
            XCTAssertEqual(tok.pieces(ids), c["pieces"] as! [String], text)
            XCTAssertEqual(tok.decode(ids), c["decoded"] as! String, text)
        }
    }

    func testStoriesTokenIDsMatchTransformers() throws {
        let ref = try Reference()
        let tok = try TokenizerLoader.load(directory: ref.modelDirectory)
        let texts = ref.value("texts") as! [String]
        let expected = ref.idRows("token_ids")
        for (text, ids) in zip(texts, expected) { XCTAssertEqual(tok.encode(text), ids, text) }
    }

    func testChatTemplateFromItsOwnFile() throws {
        let dir = try Fixtures.temporaryDirectory("spm-chat")
        try FileManager.default.copyItem(at: Fixtures.file("tokenizers/llama2/tokenizer.model"),
                                          to: dir.appendingPathComponent("tokenizer.model"))
        try "{{ bos_token }}[INST] {{ messages[0]['content'] }} [/INST]".write(
            to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        let tok = try TokenizerLoader.load(directory: dir)
        XCTAssertEqual(tok.chatTemplate, "{{ bos_token }}[INST] {{ messages[0]['content'] }} [/INST]")
        XCTAssertTrue(tok.addsBOS)
    }

    func testNotATokenizerIsRefused() throws {
        let url = try Fixtures.temporaryDirectory("spm").appendingPathComponent("tokenizer.model")
        try Data("garbage".utf8).write(to: url)
        XCTAssertThrowsError(try SentencePieceTokenizer(model: url)) { e in
            XCTAssertEqual((e as! PruneError).subject, url.path)
        }
    }
}
