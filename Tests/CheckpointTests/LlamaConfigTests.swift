// config.json decoding: HF key names, defaults, rope scaling kinds, and clear refusals.
import Checkpoint
import Foundation
import Support
import TestSupport
import XCTest

final class LlamaConfigTests: XCTestCase {
    func write(_ json: String) throws -> URL {
        let url = try Fixtures.temporaryDirectory("config").appendingPathComponent("config.json")
        try json.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    let minimal = #""hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8, "vocab_size": 512"#

    func testStoriesConfigDecodesWithHFNames() throws {
        let c = try LlamaConfig.load(Fixtures.stories260K.appendingPathComponent("config.json"))
        XCTAssertEqual(c.hiddenSize, 64)
        XCTAssertEqual(c.numKeyValueHeads, 4)
        XCTAssertEqual(c.headDim, 8)
        XCTAssertEqual(c.rmsNormEps, 1e-5)
        XCTAssertTrue(c.tieWordEmbeddings)
        XCTAssertNil(c.ropeScaling)
        XCTAssertEqual(c.eosTokenIDs, [2])
    }

    func testDefaultsFollowTransformers() throws {
        let c = try LlamaConfig.load(try write("{\(minimal)}"))
        XCTAssertEqual(c.numKeyValueHeads, 8)
        XCTAssertEqual(c.headDim, 8)
        XCTAssertEqual(c.ropeTheta, 10000)
        XCTAssertFalse(c.tieWordEmbeddings)
    }

    func testLlama3RopeScalingInBothSpellings() throws {
        let old = try LlamaConfig.load(try write(#"{\#(minimal), "rope_theta": 500000, "eos_token_id": [128001, 128009], "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}"#))
        XCTAssertEqual(old.ropeScaling?.ropeType, "llama3")
        XCTAssertEqual(old.eosTokenIDs, [128001, 128009])
        let new = try LlamaConfig.load(try write(#"{\#(minimal), "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}"#))
        XCTAssertEqual(new.ropeScaling, old.ropeScaling.map { var s = $0; s.ropeTheta = 500000; return s })
        XCTAssertEqual(new.ropeTheta, 500000)
        let legacy = try LlamaConfig.load(try write(#"{\#(minimal), "rope_scaling": {"type": "linear", "factor": 2.0}}"#))
        XCTAssertEqual(legacy.ropeScaling?.ropeType, "linear")
    }

    func testPretrainingLengthDefaultsAsInTransformers() throws {
        let inner = try LlamaConfig.load(try write(#"{\#(minimal), "max_position_embeddings": 4096, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}"#))
        XCTAssertEqual(inner.ropeScaling?.originalMaxPositionEmbeddings, 4096)
        let top = try LlamaConfig.load(try write(#"{\#(minimal), "original_max_position_embeddings": 1024, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}}"#))
        XCTAssertEqual(top.ropeScaling?.originalMaxPositionEmbeddings, 1024)
    }

    func testRefusals() throws {
        func refused(_ json: String, _ words: String, line: UInt = #line) throws {
            let url = try write(json)
            XCTAssertThrowsError(try LlamaConfig.load(url), line: line) { e in
                let p = e as! PruneError
                XCTAssertEqual(p.subject, url.path, line: line)
                XCTAssertTrue(p.problem.contains(words), "“\(p.problem)” should mention “\(words)”", line: line)
            }
        }
        try refused(#"{\#(minimal), "model_type": "mistral"}"#, "not a Llama")
        try refused(#"{\#(minimal), "architectures": ["GPT2LMHeadModel"]}"#, "not supported")
        try refused(#"{\#(minimal), "rope_scaling": {"rope_type": "longrope", "factor": 4.0}}"#, "\"longrope\" is not supported")
        try refused(#"{\#(minimal), "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}"#, "needs")
        try refused(#"{\#(minimal), "num_key_value_heads": 3}"#, "multiple")
        try refused(#"{"hidden_size": 64}"#, "missing key")
        try refused("not json", "not a valid config.json: not valid JSON")
        try refused(#"{\#(minimal), "rms_norm_eps": "tiny"}"#, "not a valid config.json: wrong type for \"rms_norm_eps\"")
        try refused(#"{\#(minimal), "rope_scaling": {"rope_type": "linear", "factor": "big"}}"#, "wrong type for \"rope_scaling.factor\"")
        try refused("[1, 2]", "not a JSON object")
        XCTAssertThrowsError(try LlamaConfig.load(URL(fileURLWithPath: "/nonexistent/config.json")))
    }
}
