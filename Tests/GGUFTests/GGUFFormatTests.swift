// The files we write, read back by our own reader against the GGUF spec: the header (magic, version, counts), the
// metadata with the value types llama.cpp reads (u32 sizes, f32 rope base and epsilon, string/f32/i32 arrays), tensor
// offsets aligned to 32 with data inside the file, every tensor's values (q/k in llama.cpp's rope order), Q8_0's
// fallback to F16 for rows not made of 32-blocks, and the error bound of each Q8_0 block.
import Checkpoint
import Foundation
import GGUF
import Support
import Tensor
import TestSupport
import XCTest

final class GGUFFormatTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("gguf-format") }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    func testStoriesFileFollowsTheSpec() throws {
        let url = scratch.appendingPathComponent("stories.gguf")
        let report = try GGUFModelExport.write(model: Fixtures.stories260K, to: url, fileType: nil, force: false)
        XCTAssertEqual(report.dtype, "f32", "stories260K is stored f32: the default keeps it")
        let bytes = try Data(contentsOf: url)
        XCTAssertEqual(Array(bytes.prefix(8)), [0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0], "magic \"GGUF\", version 3")

        let file = try GGUFReader(url: url)
        XCTAssertEqual(file.version, 3)
        let expected: [(String, GGUFValue)] = [
            ("general.alignment", .uint32(32)), ("general.architecture", .string("llama")), ("general.type", .string("model")),
            ("llama.block_count", .uint32(5)), ("llama.context_length", .uint32(512)), ("llama.embedding_length", .uint32(64)),
            ("llama.feed_forward_length", .uint32(172)), ("llama.attention.head_count", .uint32(8)),
            ("llama.attention.head_count_kv", .uint32(4)), ("llama.rope.freq_base", .float32(10000)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)), ("llama.attention.key_length", .uint32(8)),
            ("llama.attention.value_length", .uint32(8)), ("llama.rope.dimension_count", .uint32(8)), ("llama.vocab_size", .uint32(512)),
            ("general.file_type", .uint32(0)), ("tokenizer.ggml.model", .string("llama")), ("tokenizer.ggml.pre", .string("default")),
            ("tokenizer.ggml.bos_token_id", .uint32(1)), ("tokenizer.ggml.eos_token_id", .uint32(2)),
            ("tokenizer.ggml.unknown_token_id", .uint32(0)), ("tokenizer.ggml.add_bos_token", .bool(true)),
            ("tokenizer.ggml.add_eos_token", .bool(false)),
        ]
        for (key, value) in expected { XCTAssertEqual(file.value(key), value, key) }
        XCTAssertEqual(file.metadata.first?.key, "general.alignment")
        let tokens = try XCTUnwrap(file.value("tokenizer.ggml.tokens")?.arrayValue)
        XCTAssertEqual(tokens.count, 512)
        XCTAssertEqual(tokens.prefix(3).map(\.stringValue), ["<unk>", "<s>", "</s>"])
        XCTAssertEqual(tokens[13].stringValue, "<0x0A>")
        guard case .array(.float32, let scores)? = file.value("tokenizer.ggml.scores"),
              case .array(.int32, let types)? = file.value("tokenizer.ggml.token_type") else {
            return XCTFail("scores must be a float32 array, token_type an int32 array")
        }
        XCTAssertEqual(scores.count, 512)
        XCTAssertEqual(types.prefix(4), [.int32(2), .int32(3), .int32(3), .int32(6)], "unknown, control, control, byte")

        // 5 layers × 9 tensors + token_embd + output_norm; tied: no output.weight.
        XCTAssertEqual(file.tensors.count, 47)
        XCTAssertNil(file.info(GGUFTensorNames.output))
        XCTAssertEqual(file.dataStart % 32, 0)
        var end = 0
        for info in file.tensors {
            XCTAssertEqual(info.offset % 32, 0, "\(info.name) is not 32-aligned")
            end = max(end, info.offset + info.byteCount)
        }
        XCTAssertEqual(file.dataStart + (end + 31) / 32 * 32, bytes.count, "the data section ends at the file's end, padded")
        XCTAssertEqual(file.info("blk.0.attn_k.weight")?.dimensions, [64, 32], "ggml order: the row length (C) first")

        // Every tensor holds the checkpoint's values, q and k rows in llama.cpp's rope order.
        let store = try CheckpointTensors(directory: Fixtures.stories260K)
        let config = try LlamaConfig.load(Fixtures.stories260K.appendingPathComponent("config.json"))
        for (hf, _) in CheckpointValidation.expectedTensors(config) {
            var want = try store.tensor(hf)
            if hf.hasSuffix("q_proj.weight") { want = GGUFRopeLayout.interleaved(want, heads: 8) }
            if hf.hasSuffix("k_proj.weight") { want = GGUFRopeLayout.interleaved(want, heads: 4) }
            let got = try file.tensor(try XCTUnwrap(GGUFTensorNames.name(forHF: hf)))
            XCTAssertEqual(got.shape, want.shape, hf)
            XCTAssertEqual(got.maxAbsDifference(want), 0, "\(hf) is not stored exactly")
        }
    }

    func testQ8_0FileQuantizesWholeBlocksAndKeepsShortRowsF16() throws {
        let url = scratch.appendingPathComponent("stories-q8_0.gguf")
        let report = try GGUFModelExport.write(model: Fixtures.stories260K, to: url, fileType: .q8_0, force: false)
        let file = try GGUFReader(url: url)
        XCTAssertEqual(file.value("general.file_type"), .uint32(7))
        XCTAssertEqual(file.info("blk.0.attn_q.weight")?.type, .q8_0, "rows of C = 64: two blocks")
        XCTAssertEqual(file.info("token_embd.weight")?.type, .q8_0)
        XCTAssertEqual(file.info("blk.0.ffn_down.weight")?.type, .f16, "rows of F = 172 are not whole 32-blocks")
        XCTAssertEqual(file.info("blk.0.attn_norm.weight")?.type, .f32, "norms stay f32")
        XCTAssertEqual(report.keptF16, (0..<5).map { "blk.\($0).ffn_down.weight" })
        XCTAssertEqual(report.tensorTypes, ["F32": 11, "F16": 5, "Q8_0": 31])
        XCTAssertEqual(file.info("blk.0.attn_q.weight")?.byteCount, 64 * 2 * 34)

        // Every block within its bound of the original.
        let store = try CheckpointTensors(directory: Fixtures.stories260K)
        let original = try store.tensor(WeightNames.embedding)
        let decoded = try file.tensor("token_embd.weight")
        try assertWithinQ8_0Bound(original, decoded)
    }

    func testQ8_0BlockErrorIsWithinHalfTheScale() throws {
        var rng = SeededGenerator(seed: 3)
        // Blocks of very different magnitudes, an all-zero block, a single outlier, exact multiples of the scale.
        var values: [Float] = []
        for scale: Float in [1e-4, 0.02, 1, 300] { values += (0..<32).map { _ in Float.random(in: -scale...scale, using: &rng) } }
        values += Array(repeating: 0, count: 32)
        values += [1000] + (0..<31).map { _ in Float.random(in: -0.01...0.01, using: &rng) }
        values += (0..<32).map { Float($0 - 16) * 0.5 }
        let original = Tensor(shape: [values.count / 32, 32], values: values)
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: GGUFTensorType.q8_0.byteCount(elements: values.count)!, alignment: 8)
        defer { bytes.deallocate() }
        GGUFQuantization.encode(original.data, count: values.count, as: .q8_0, into: bytes)
        let decoded = Tensor(zeros: original.shape)
        GGUFQuantization.decode(bytes, count: values.count, as: .q8_0, into: decoded.data)
        try assertWithinQ8_0Bound(original, decoded)
        // The largest magnitude of each block maps to ±127; the zero block decodes to zeros.
        for block in 0..<values.count / 32 where block != 4 {
            let qs = (0..<32).map { Int(bytes.load(fromByteOffset: block * 34 + 2 + $0, as: Int8.self)) }
            XCTAssertEqual(qs.map(abs).max(), 127, "block \(block)")
        }
        XCTAssertEqual((128..<160).map { decoded.data[$0] }, Array(repeating: 0, count: 32))
    }

    /// |x − x̂| ≤ d/2 + 127·|d − d₁₆| for each block of 32 (d = max|x|/127, d₁₆ its f16), with float32 rounding slack.
    func assertWithinQ8_0Bound(_ original: Tensor, _ decoded: Tensor, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(original.count, decoded.count, file: file, line: line)
        var worst: Float = 0  // largest |error| / bound
        for block in 0..<original.count / 32 {
            let xs = (0..<32).map { original.data[block * 32 + $0] }
            var d = (xs.map(abs).max() ?? 0) / 127
            var half: UInt16 = 0, d16: Float = 0
            Kernels.f32ToF16(&d, &half, 1)
            Kernels.f16ToF32(&half, &d16, 1)
            let bound = d / 2 + 127 * abs(d - d16) + 1e-6 * d
            for j in 0..<32 {
                let error = abs(xs[j] - decoded.data[block * 32 + j])
                if bound > 0 { worst = max(worst, error / bound) }
                if error > bound {
                    return XCTFail("block \(block) element \(j): |error| \(error) > bound \(bound)", file: file, line: line)
                }
            }
        }
        print("q8_0: largest |error| is \(worst) of its block's bound")
    }

    func testTinyBPEFileCarriesTheVocabulary() throws {
        let model = try TinyCheckpoints.fixture("untied-f32", in: scratch)
        let url = scratch.appendingPathComponent("tiny-q8_0.gguf")
        let report = try GGUFModelExport.write(model: model, to: url, fileType: .q8_0, force: false)
        let file = try GGUFReader(url: url)
        XCTAssertEqual(file.value("tokenizer.ggml.model"), .string("gpt2"))
        XCTAssertEqual(file.value("tokenizer.ggml.pre"), .string("gpt-2"))
        let tokens = try XCTUnwrap(file.value("tokenizer.ggml.tokens")?.arrayValue?.map(\.stringValue))
        XCTAssertEqual(tokens.count, 96, "padded to config.json's vocab_size")
        XCTAssertEqual(tokens.prefix(4), ["<unk>", "<|bos|>", "<|eos|>", "a"])
        XCTAssertEqual(tokens.last, "[PAD95]")
        let types = try XCTUnwrap(file.value("tokenizer.ggml.token_type")?.arrayValue?.map(\.intValue))
        XCTAssertEqual(types.prefix(4), [3, 3, 3, 1], "special tokens are control, the rest normal")
        XCTAssertEqual(types.last, 5, "padding is unused")
        let merges = try XCTUnwrap(file.value("tokenizer.ggml.merges")?.arrayValue?.map(\.stringValue))
        XCTAssertEqual(merges.count, TinyCheckpoints.merges.count)
        XCTAssertEqual(merges.prefix(3), ["Ġ t", "h e", "Ġt he"])
        XCTAssertEqual(file.value("tokenizer.ggml.bos_token_id"), .uint32(1))
        XCTAssertEqual(file.value("tokenizer.ggml.eos_token_id"), .uint32(2))
        XCTAssertEqual(file.value("tokenizer.ggml.unknown_token_id"), .uint32(0))
        XCTAssertEqual(file.value("tokenizer.ggml.add_bos_token"), .bool(true))
        XCTAssertEqual(file.value("tokenizer.chat_template")?.stringValue?.hasPrefix("{% for m in messages %}"), true)
        // C = 48 and F = 80: no matrix row is whole 32-blocks, so q8_0 keeps every matrix f16, and says so.
        XCTAssertEqual(report.tensorTypes, ["F32": 7, "F16": 23])
        XCTAssertEqual(report.keptF16.count, 23)
        XCTAssertNotNil(file.info(GGUFTensorNames.output), "untied: output.weight is written")
    }

    func testRopeLayoutTurnsRotateHalfIntoAdjacentPairs() {
        // Rotating a head the HF way (pair i with i + D/2) then reordering equals reordering then rotating adjacent pairs.
        var rng = SeededGenerator(seed: 11)
        let heads = 3, d = 8
        let q = Tensor(shape: [heads * d, 1], values: (0..<heads * d).map { _ in Float.random(in: -1...1, using: &rng) })
        let angles = (0..<d / 2).map { _ in Float.random(in: -3...3, using: &rng) }
        let rotateHalf = Tensor(zeros: q.shape), adjacent = Tensor(zeros: q.shape)
        let permuted = GGUFRopeLayout.interleaved(q, heads: heads)
        for h in 0..<heads {
            for i in 0..<d / 2 {
                let (c, s) = (cos(angles[i]), sin(angles[i]))
                let (a, b) = (q.data[h * d + i], q.data[h * d + i + d / 2])
                rotateHalf.data[h * d + i] = a * c - b * s
                rotateHalf.data[h * d + i + d / 2] = b * c + a * s
                let (x, y) = (permuted.data[h * d + 2 * i], permuted.data[h * d + 2 * i + 1])
                adjacent.data[h * d + 2 * i] = x * c - y * s
                adjacent.data[h * d + 2 * i + 1] = y * c + x * s
            }
        }
        XCTAssertEqual(GGUFRopeLayout.interleaved(rotateHalf, heads: heads).maxAbsDifference(adjacent), 0, accuracy: 1e-6)
    }

    func testReaderRefusesBrokenFiles() throws {
        let url = scratch.appendingPathComponent("stories.gguf")
        _ = try GGUFModelExport.write(model: Fixtures.stories260K, to: url, fileType: nil, force: false)
        let good = try Data(contentsOf: url)
        let broken = scratch.appendingPathComponent("broken.gguf")
        func refusal(_ data: Data) -> String {
            try? data.write(to: broken)
            do { _ = try GGUFReader(url: broken); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertTrue(refusal(good.prefix(good.count - 100)).contains("ends past the end of the file"), refusal(good.prefix(good.count - 100)))
        XCTAssertTrue(refusal(good.prefix(1000)).contains("tensor count 47 cannot fit in the file"), refusal(good.prefix(1000)))
        XCTAssertTrue(refusal(good.prefix(12)).contains("truncated"), refusal(good.prefix(12)))
        XCTAssertTrue(refusal(Data("GGML".utf8) + good.dropFirst(4)).contains("not a GGUF file"))
        var version = good
        version[4] = 9
        XCTAssertTrue(refusal(version).contains("version 9 is not supported"))
        XCTAssertTrue(refusal(Data()).contains("truncated"))
        XCTAssertTrue(refusal(good).contains("accepted"))
    }
}
