// `prune merge` as a user meets it: a merged checkpoint the other commands load, and refusals as one
// error line naming the file with a non-zero exit.
import Checkpoint
import Foundation
import Tensor
import TestSupport
import XCTest

final class MergeCommandTests: XCTestCase {
    let model = Fixtures.projectRoot.appendingPathComponent("Checkpoints/stories260K")

    func testMergeWritesACheckpointAndRefusesBadInputInOneLine() throws {
        let tmp = try Fixtures.temporaryDirectory("cli-merge")
        defer { try? FileManager.default.removeItem(at: tmp) }
        // A rank-1 adapter on layer 1's q_proj (stories260K: C = 64, H·D = 64).
        let adapter = tmp.appendingPathComponent("adapter")
        try PEFTAdapter(config: PEFTAdapterConfig(rank: 1, alpha: 2, targets: [.q], layers: [1]),
                        weights: [LoRAWeights(layer: 1, projection: .q, a: Tensor(shape: [1, 64], repeating: 0.1),
                                              b: Tensor(shape: [64, 1], repeating: 0.2))]).write(to: adapter)
        let out = tmp.appendingPathComponent("merged")
        let r = try PruneExecutable.run(["merge", model.path, "--adapter", adapter.path, "-o", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("1 weights changed"), r.stdout)
        let tokenize = try PruneExecutable.run(["tokenize", out.path, "--text", "Once upon a time", "--json"])
        XCTAssertEqual(tokenize.stdout.trimmingCharacters(in: .whitespacesAndNewlines), #"{"ids":[1,403,407,261,378]}"#)

        for (args, words) in [
            (["merge", model.path, "--adapter", tmp.appendingPathComponent("none").path, "-o", tmp.appendingPathComponent("o2").path],
             ["none", "adapter directory not found"]),
            (["merge", model.path, "--adapter", adapter.path, "-o", out.path], [out.path, "--force"]),
            (["merge", model.path, "--adapter", adapter.path, "-o", tmp.appendingPathComponent("o3").path, "--dtype", "f8"], ["--dtype", "f8"]),
        ] {
            let r = try PruneExecutable.run(args)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            for w in words { XCTAssertTrue(r.stderr.contains(w), "“\(r.stderr)” should mention “\(w)”") }
        }
    }
}
