// `finetune --gguf`: beside OUT/adapter and OUT/merged, OUT/merged.gguf holds exactly the merged checkpoint's weights
// (in its dtype) with its tokenizer; a base GGUF cannot carry is refused before any step is trained.
import Checkpoint
import Foundation
import GGUF
import Support
import TestSupport
import XCTest

final class FinetuneGGUFTests: XCTestCase {
    func testGGUFFlagWritesTheMergedModelAsGGUF() throws {
        try PruneExecutable.requireBuilt()
        let scratch = try Fixtures.temporaryDirectory("finetune-gguf")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("run")
        let r = try PruneExecutable.runFinetune([Fixtures.stories260K.path, "--dataset", Fixtures.kjvValid.path, "--lora", "--context", "32",
                                                 "--batch-size", "2", "--steps", "2", "--gguf", "-o", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("wrote \(out.path)/merged.gguf (model, f32: 47 tensors"), r.stderr)
        let file = try GGUFReader(url: out.appendingPathComponent("merged.gguf"))
        XCTAssertEqual(file.value("tokenizer.ggml.model"), .string("llama"))
        let merged = try CheckpointTensors(directory: out.appendingPathComponent("merged"))
        let base = try CheckpointTensors(directory: Fixtures.stories260K)
        for hf in [WeightNames.projection(.v, layer: 1), WeightNames.projection(.down, layer: 4)] {
            let name = try XCTUnwrap(GGUFTensorNames.name(forHF: hf))
            XCTAssertEqual(try file.tensor(name).maxAbsDifference(merged.tensor(hf)), 0, "\(name) holds the merged weights")
            XCTAssertGreaterThan(try file.tensor(name).maxAbsDifference(base.tensor(hf)), 0, "\(name) was trained")
        }
    }

    func testABaseGGUFCannotCarryIsRefusedBeforeTraining() throws {
        try PruneExecutable.requireBuilt()
        let scratch = try Fixtures.temporaryDirectory("finetune-gguf-refused")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let model = scratch.appendingPathComponent("model")
        try FileManager.default.copyItem(at: Fixtures.file("checkpoints/untied-f32"), to: model)
        let r = try PruneExecutable.runFinetune([model.path, "--dataset", Fixtures.kjvValid.path, "--lora", "--steps", "1", "--gguf",
                                                 "-o", scratch.appendingPathComponent("run").path])
        assertOneLineError((r.status, r.stdout, r.stderr), containing: "no tokenizer.model or tokenizer.json")
    }
}
