// Exported files evaluated by llama.cpp (through llama-cpp-python on a llama.cpp build): its logits on a prompt within
// the dtype's bound of ours, its greedy continuation equal to ours, and its tokenization equal to ours — on the default
// checkpoint (SentencePiece), the tiny checkpoints of every layout (byte-level BPE, GQA, untied and sharded f16, bf16,
// attention and MLP biases with head_dim ≠ C/H, linear, llama3 and yarn RoPE), a cut, LoRA adapters, and SmolLM2-135M
// in f16 and bf16. Skipped with the reason printed where llama.cpp or its Python bindings are absent.
// Bounds are 3× the largest difference measured (printed by every test). Where they come from: llama.cpp keeps the KV
// cache in f16, rounds activations to f16 (bf16) before f16 (bf16) matrix products, and to 8 bits before Q8_0 ones.
import Checkpoint
import Foundation
import GGUF
import Support
import Surgery
import Tensor
import TestSupport
import XCTest

final class LlamaCppExportTests: XCTestCase {
    /// Texts llama.cpp's SentencePiece tokenizer must split as sentencepiece does (no runs of spaces: stories260K's model
    /// collapses them, which llama.cpp's tokenizer does not implement).
    let storyTexts = ["Once upon a time, there was a little girl.", "Lily's dog: 1234!\nThe end.", "café ☕ naïve"]
    let storyPrompt: [Int32] = [1, 403, 407, 261, 378]
    var scratch: URL!

    override func setUpWithError() throws {
        try LlamaCpp.require()
        scratch = try Fixtures.temporaryDirectory("gguf-llama-cpp")
    }

    override func tearDown() { if let scratch { try? FileManager.default.removeItem(at: scratch) } }

    /// `model` exported as `type` (nil: its own dtype) to scratch/`name`.gguf.
    func exported(_ model: URL, _ type: GGUFFileType? = nil, as name: String) throws -> URL {
        let gguf = scratch.appendingPathComponent("\(name).gguf")
        _ = try GGUFModelExport.write(model: model, to: gguf, fileType: type, force: false)
        return gguf
    }

    func testStoriesF32AgreesWithLlamaCpp() throws {
        let gguf = try exported(Fixtures.stories260K, as: "stories")
        try LlamaCppAgreement.measure(checkpoint: Fixtures.stories260K, gguf: gguf, prompt: storyPrompt, generate: 48, texts: storyTexts)
            .check("stories260K f32", bound: 0.03)
    }

    func testStoriesF16Bf16AndQ8_0AgreeWithLlamaCpp() throws {
        for (type, bound) in [(GGUFFileType.f16, Float(0.05)), (.bf16, 0.3), (.q8_0, 0.8)] {
            let gguf = try exported(Fixtures.stories260K, type, as: "stories-\(type)")
            try LlamaCppAgreement.measure(checkpoint: Fixtures.stories260K, gguf: gguf, prompt: storyPrompt, generate: 24)
                .check("stories260K \(type)", bound: bound)
        }
    }

    func testTinyCheckpointsOfEveryLayoutAgreeWithLlamaCpp() throws {
        let prompt: [Int32] = [1, 5, 17, 3, 40, 12, 8, 30, 22, 9, 14, 6]
        for name in ["untied-f32", "untied-f16-sharded", "tied-bf16", "llama3-rope", "yarn-rope", "headdim-bias-linear-rope"] {
            let model = try TinyCheckpoints.fixture(name, in: scratch)
            let gguf = try exported(model, as: name)
            try LlamaCppAgreement.measure(checkpoint: model, gguf: gguf, prompt: prompt, generate: 16, texts: TinyCheckpoints.texts)
                .check(name, bound: 0.004)
        }
    }

    func testCutModelAgreesWithLlamaCpp() throws {
        let cut = scratch.appendingPathComponent("cut")
        _ = try LayerCutter(model: Fixtures.stories260K).cut(dropping: LayerSelection([2, 3]), to: cut)
        let gguf = try exported(cut, as: "cut")
        XCTAssertEqual(try GGUFReader(url: gguf).value("llama.block_count"), .uint32(3))
        try LlamaCppAgreement.measure(checkpoint: cut, gguf: gguf, prompt: storyPrompt, generate: 48, texts: storyTexts)
            .check("stories260K without layers 2-3", bound: 0.03)
    }

    func testAdapterAppliedByLlamaCppAgreesWithOurs() throws {
        let base = try exported(Fixtures.stories260K, as: "base")
        for rsLoRA in [false, true] {
            let adapter = scratch.appendingPathComponent("adapter-\(rsLoRA)")
            try RandomAdapter.write(for: Fixtures.stories260K, to: adapter, rank: 4, alpha: 8, rsLoRA: rsLoRA)
            let gguf = scratch.appendingPathComponent("adapter-\(rsLoRA).gguf")
            _ = try GGUFAdapterExport.write(adapter: adapter, model: Fixtures.stories260K, to: gguf, fileType: nil, force: false)
            try LlamaCppAgreement.measure(checkpoint: Fixtures.stories260K, adapter: adapter, gguf: base, lora: gguf, prompt: storyPrompt,
                                          generate: 32)
                .check("stories260K + LoRA\(rsLoRA ? " (rsLoRA)" : "")", bound: 0.03)
        }
    }

    func testSmolLM2Bf16AgreesWithLlamaCpp() throws {
        try smolLM2(.bf16, bound: 0.9)
    }

    func testSmolLM2F16AgreesWithLlamaCpp() throws {
        try smolLM2(.f16, bound: 0.04)
    }

    /// SmolLM2 exported as `type`: llama.cpp's logits within `bound`, the same 32-token greedy continuation, the same
    /// tokens for text with digits, a chat turn's special tokens and non-ASCII.
    func smolLM2(_ type: GGUFFileType, bound: Float) throws {
        let model = try Fixtures.smolLM2()
        let gguf = try exported(model, type, as: "smollm2-\(type)")
        let prompt: [Int32] = [504, 3575, 282, 4649, 314]  // "The capital of France is"
        try LlamaCppAgreement.measure(checkpoint: model, gguf: gguf, prompt: prompt, generate: 32,
                                      texts: ["The capital of France is", "<|im_start|>user\nIn 2024, 3.14 ≈ π!<|im_end|>\n", "  naïve  café\n\n"])
            .check("SmolLM2 \(type)", bound: bound)
    }
}
