// `prune export` as a user meets it: a GGUF file of the model or of an adapter with a report of what was written, and
// refusals as one error line naming the file or flag with a non-zero exit.
import Checkpoint
import Foundation
import Tensor
import TestSupport
import XCTest

final class ExportCommandTests: XCTestCase {
    let model = Fixtures.projectRoot.appendingPathComponent("Checkpoints/stories260K")

    func testExportWritesGGUFFilesAndRefusesBadInputInOneLine() throws {
        try PruneExecutable.requireBuilt()
        let tmp = try Fixtures.temporaryDirectory("cli-export")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = tmp.appendingPathComponent("model.gguf")
        let r = try PruneExecutable.run(["export", model.path, "--gguf", out.path, "--dtype", "q8_0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("wrote \(out.path) (model, q8_0: 47 tensors: 5 F16, 11 F32, 31 Q8_0;"), r.stdout)
        XCTAssertTrue(r.stdout.contains("kept F16 (rows not a multiple of 32, which q8_0 needs): blk.0.ffn_down.weight"), r.stdout)
        XCTAssertEqual(Array(try Data(contentsOf: out).prefix(4)), Array("GGUF".utf8))

        let adapter = tmp.appendingPathComponent("adapter")
        try PEFTAdapter(config: PEFTAdapterConfig(rank: 1, alpha: 2, targets: [.q], layers: [1]),
                        weights: [LoRAWeights(layer: 1, projection: .q, a: Tensor(shape: [1, 64], repeating: 0.1),
                                              b: Tensor(shape: [64, 1], repeating: 0.2))]).write(to: adapter)
        let adapterOut = tmp.appendingPathComponent("adapter.gguf")
        let a = try PruneExecutable.run(["export", model.path, "--adapter", adapter.path, "--gguf", adapterOut.path, "--json"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["kind"] as? String, "adapter")
        XCTAssertEqual(report["tensorTypes"] as? [String: Int], ["F32": 2])

        for (args, words) in [
            (["export", model.path, "--gguf", out.path], [out.path, "already exists", "--force"]),
            (["export", model.path, "--gguf", tmp.appendingPathComponent("x.gguf").path, "--dtype", "q4_0"], ["--dtype", "q4_0", "q8_0"]),
            (["export", tmp.appendingPathComponent("none").path, "--gguf", tmp.appendingPathComponent("y.gguf").path],
             ["none", "model directory not found"]),
            (["export", model.path, "--adapter", model.path, "--gguf", tmp.appendingPathComponent("z.gguf").path],
             ["adapter_config.json", "file not found"]),
        ] {
            let r = try PruneExecutable.run(args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            for w in words { XCTAssertTrue(r.stderr.contains(w), "“\(r.stderr)” should mention “\(w)”") }
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: tmp.path)), ["model.gguf", "adapter", "adapter.gguf"],
                       "refused exports leave nothing")
    }
}
