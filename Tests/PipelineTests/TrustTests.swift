// Trusting a healed model: the export checks itself, an adapter refuses a base it was not trained on, and
// --keep-best exports the step with the lowest held-out loss.
import Checkpoint
import Finetuning
import Foundation
import Jobs
import Llama
import Support
import Surgery
import Tensor
import TestSupport
import Training
import XCTest

final class TrustTests: XCTestCase {
    var scratch: URL!
    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("trust") }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    func options(model: URL, output: String) -> FinetuneOptions {
        var o = FinetuneOptions(model: model.path, dataset: Fixtures.kjvValid.path, output: output)
        o.lora = true; o.context = 32; o.batchSize = 2; o.steps = 8; o.lr = 1e-3; o.evalTokens = 300
        return o
    }

    func testACorruptedMergedFileIsCaughtByTheSelfCheck() throws {
        let o = options(model: Fixtures.stories260K, output: scratch.appendingPathComponent("run").path)
        _ = try Finetuner(options: o, parallelism: .allCores, log: { _ in }).run()
        let merged = URL(fileURLWithPath: o.output).appendingPathComponent("merged")
        // The written files pass against the model they came from (the base with the adapter attached).
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        try PEFTAdapter.read(URL(fileURLWithPath: o.output).appendingPathComponent("adapter"))
            .attach(to: model, directory: URL(fileURLWithPath: o.output).appendingPathComponent("adapter"))
        let tokens: [Int32] = [1, 403, 407, 261, 378, 300, 290, 280]
        let ok = try ExportCheck.verify(merged: merged, against: model, tokens: tokens, parallelism: .allCores)
        print(ok.summary)
        // Overwrite part of a weight the probe uses (layer 1's up_proj): the check fails and marks the directory.
        let file = merged.appendingPathComponent("model.safetensors")
        let entry = try XCTUnwrap(try SafetensorsFile(url: file).entryByName[WeightNames.projection(.up, layer: 1)])
        var bytes = try Data(contentsOf: file)
        let dataStart = 8 + Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        for i in (dataStart + entry.begin)..<(dataStart + entry.begin + (entry.end - entry.begin) / 2) { bytes[i] = 0x3f }
        try bytes.write(to: file)
        XCTAssertThrowsError(try ExportCheck.verify(merged: merged, against: model, tokens: tokens, parallelism: .allCores)) {
            XCTAssertTrue("\($0)".contains("self-check failed"), "\($0)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: merged.appendingPathComponent("EXPORT_CHECK_FAILED.txt").path))
    }

    func testAnAdapterForACutModelIsRefusedOnTheFullOne() throws {
        let cut = scratch.appendingPathComponent("cut")
        _ = try LayerCutter(model: Fixtures.stories260K).cut(dropping: try LayerSelection(parsing: "2-3", option: "--layers"), to: cut)
        let o = options(model: cut, output: scratch.appendingPathComponent("healed").path)
        _ = try Finetuner(options: o, parallelism: .allCores, log: { _ in }).run()
        let adapter = URL(fileURLWithPath: o.output).appendingPathComponent("adapter")
        let recorded = try XCTUnwrap(try PEFTAdapter.read(adapter).base)
        XCTAssertEqual(recorded.layers, 3)
        XCTAssertEqual(recorded.droppedFromOriginal, [2, 3])
        // On the full model: refused, naming both bases.
        XCTAssertThrowsError(try LoRAMerger(model: Fixtures.stories260K, adapter: adapter).merge(to: scratch.appendingPathComponent("wrong"))) {
            let text = "\($0)"
            XCTAssertTrue(text.contains("trained on") && text.contains(cut.path) && text.contains(Fixtures.stories260K.path), text)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("wrong").path))
        // On another cut of the same depth (layers 1-2 dropped instead of 2-3) every tensor fits: only the
        // fingerprint tells, and --force takes it anyway.
        let other = scratch.appendingPathComponent("other-cut")
        _ = try LayerCutter(model: Fixtures.stories260K).cut(dropping: try LayerSelection(parsing: "1-2", option: "--layers"), to: other)
        XCTAssertThrowsError(try LoRAMerger(model: other, adapter: adapter).merge(to: scratch.appendingPathComponent("wrong2"))) {
            XCTAssertTrue("\($0)".contains("without layers 2,3"), "\($0)")
        }
        XCTAssertNoThrow(try LoRAMerger(model: other, adapter: adapter).merge(to: scratch.appendingPathComponent("forced"), force: true))
        XCTAssertNoThrow(try LoRAMerger(model: cut, adapter: adapter).merge(to: scratch.appendingPathComponent("right")))
        // finetune --init-adapter refuses it too.
        var again = options(model: Fixtures.stories260K, output: scratch.appendingPathComponent("again").path)
        again.initAdapter = adapter.path
        XCTAssertThrowsError(try Finetuner(options: again, parallelism: .allCores, log: { _ in }).run()) {
            XCTAssertTrue("\($0)".contains("--force"), "\($0)")
        }
    }

    func testKeepBestExportsTheStepWithTheLowestHeldOutLoss() throws {
        var o = options(model: Fixtures.stories260K, output: scratch.appendingPathComponent("best").path)
        o.lr = 3e-2; o.steps = 10; o.evalEvery = 1; o.keepBest = true; o.keep = 1; o.schedule = .constant; o.maxGradNorm = 0
        var lines: [String] = []
        _ = try Finetuner(options: o, parallelism: .allCores, log: { lines.append($0) }).run()
        let out = URL(fileURLWithPath: o.output)
        let records = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let evals = records.compactMap { r -> (Int, Double)? in
            guard let s = r["step"] as? Int, s >= 1, let l = r["eval_loss"] as? Double else { return nil }
            return (s, l)
        }
        XCTAssertEqual(evals.map(\.0), Array(1...10), "one evaluation per step")
        let best = evals.min { $0.1 < $1.1 }!.0
        print("keep-best: held-out losses \(evals.map { String(format: "%.3f", $0.1) }), best step \(best)")
        XCTAssertNotEqual(best, 10, "this setting should overshoot; otherwise the test shows nothing")
        XCTAssertTrue(lines.contains { $0.contains("exporting step \(best)") }, lines.joined(separator: "\n"))
        // The exported adapter holds the best step's values, kept as a checkpoint despite --keep 1.
        let checkpoint = try SafetensorsFile(url: TrainingCheckpoint.directory(step: best, in: out.appendingPathComponent("checkpoints"))
                                                .appendingPathComponent("trainable.safetensors"))
        let exported = try PEFTAdapter.read(out.appendingPathComponent("adapter"))
        for w in exported.weights {
            assertEqualElements(w.a.array, try checkpoint.tensor(WeightNames.peftLoRA(w.projection, layer: w.layer, isA: true)).array)
            assertEqualElements(w.b.array, try checkpoint.tensor(WeightNames.peftLoRA(w.projection, layer: w.layer, isA: false)).array)
        }
    }
}
