// Checkpoint layouts beyond stories260K — untied lm_head, sharded, bf16/f16, llama3 and linear RoPE
// and yarn scaling, head_dim ≠ C/H, attention/MLP biases — against transformers (Tests/Fixtures/make_fixtures.py),
// and the real 30-layer SmolLM2-135M when it has been built.
import Checkpoint
import Foundation
import Llama
import Tensor
import TestSupport
import XCTest

final class CheckpointVariantsTests: XCTestCase {
    static let fixtures = Fixtures.projectRoot.appendingPathComponent("Tests/Fixtures/checkpoints")

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = Self.fixtures.appendingPathComponent(name)
        let expected = try SafetensorsFile(url: dir.appendingPathComponent("expected.safetensors"))
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("expected.json"))) as! [String: Any]
        let ids = try expected.rawBytes("input_ids")
        let tokens = (0..<ids.count / 8).map { Int32(ids.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        let model = try LlamaModel.load(directory: dir)
        let out = model.forward(tokens: tokens, batch: 2, length: 12)
        let refLogits = try expected.tensor("logits")
        // bf16/f16 weights are widened exactly, so only float32 arithmetic separates us from float64.
        assertPinned("variant.logits", Double(out.logits.maxAbsDifference(refLogits)), within: Tolerance.variantLogits, name, file: file, line: line)
        let targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: 2, length: 12)
        let loss = NextTokenLoss.tally(logits: out.logits, targets: targets, vocab: model.config.vocabSize).mean
        assertPinned("variant.loss", abs(loss - (meta["loss"] as! NSNumber).doubleValue), within: Tolerance.variantLoss, name, file: file, line: line)
    }

    func testUntiedLMHead() throws {
        try check("untied-f32")
        let model = try LlamaModel.load(directory: Self.fixtures.appendingPathComponent("untied-f32"))
        XCTAssertNotNil(model.untiedLMHead)
    }

    func testBF16Weights() throws { try check("tied-bf16") }

    func testShardedF16Checkpoint() throws {
        let dir = Self.fixtures.appendingPathComponent("untied-f16-sharded")
        XCTAssertTrue(try CheckpointTensors(directory: dir).isSharded)
        try check("untied-f16-sharded")
    }

    func testLlama3RopeScaling() throws { try check("llama3-rope") }

    func testYarnRopeScalingWithItsAttentionFactor() throws {
        try check("yarn-rope")
        let model = try LlamaModel.load(directory: Self.fixtures.appendingPathComponent("yarn-rope"))
        XCTAssertEqual(model.rope.attentionScaling, 0.1 * log(4.0) + 1, accuracy: 1e-12)
    }

    func testHeadDimBiasesAndLinearRope() throws { try check("headdim-bias-linear-rope") }

    func testKVCacheDecodingEqualsFullForward() throws {
        let model = try LlamaModel.load(directory: Self.fixtures.appendingPathComponent("llama3-rope"))
        let tokens: [Int32] = [1, 5, 9, 33, 70, 12, 8, 40]
        let full = model.forward(tokens: tokens, batch: 1, length: tokens.count).logits
        let cache = KVCache(config: model.config, batch: 1, capacity: tokens.count)
        let V = model.config.vocabSize
        _ = model.forward(tokens: Array(tokens[0..<5]), batch: 1, length: 5, cache: cache)
        var worst: Float = 0
        for t in 5..<tokens.count {
            let step = model.forward(tokens: [tokens[t]], batch: 1, length: 1, cache: cache).logits
            for v in 0..<V { worst = max(worst, abs(step[v] - full[t * V + v])) }
        }
        assertPinned("kvcache.logits", Double(worst), within: Tolerance.kvCacheLogits)
    }

    /// The real SmolLM2-135M (bf16, 30 layers), built by scripts/get-smollm2.sh.
    func testRealSmolLM2LossMatchesTransformers() throws {
        let dir = try Fixtures.smolLM2()
        let ref = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("smollm2-135m-loss.json"))) as! [String: Any]
        let tokens = (ref["input_ids"] as! [NSNumber]).map { Int32(truncating: $0) }
        let model = try LlamaModel.load(directory: dir)
        XCTAssertEqual(model.config.numHiddenLayers, 30)
        let out = model.forward(tokens: tokens, batch: 1, length: tokens.count)
        let loss = NextTokenLoss.tally(logits: out.logits,
                                       targets: NextTokenLoss.shiftedTargets(tokens: tokens, batch: 1, length: tokens.count),
                                       vocab: model.config.vocabSize).mean
        assertPinned("smollm2.loss", abs(loss - (ref["loss"] as! NSNumber).doubleValue), within: Tolerance.smolLM2Loss)
    }
}
