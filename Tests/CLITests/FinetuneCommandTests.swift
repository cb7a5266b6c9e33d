// The finetune executable as a user meets it: a run on the shipped checkpoint and KJV data, one-line refusals
// naming the flag, a resume that refuses a changed flag, and kill -9 at random moments never leaving a corrupt
// checkpoint (a resume after it finishes the run).
import Foundation
import Support
import TestSupport
import XCTest

final class FinetuneCommandTests: XCTestCase {
    var scratch: URL!
    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("finetune-cli") }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    func args(_ out: URL, _ extra: [String] = []) -> [String] {
        [Fixtures.stories260K.path, "--lora", "--dataset", Fixtures.kjvValid.path, "--context", "32", "--batch-size", "2",
         "--steps", "6", "--lr", "1e-3", "--eval-tokens", "200", "--threads", "2", "-o", out.path] + extra
    }

    func testARunWritesEverythingAndRefusesToOverwriteIt() throws {
        let out = scratch.appendingPathComponent("run")
        let r = try PruneExecutable.runFinetune(args(out))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("held-out perplexity"), r.stdout)
        XCTAssertTrue(r.stderr.contains("held out: 1 of 28 records of kjv-valid.jsonl (one in 20: line 20)\n"),
                      "the log says which records were held out: \(r.stderr)")
        for f in ["config.json", "metrics.jsonl", "loss.svg", "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
                  "merged/config.json", "merged/model.safetensors", "merged/tokenizer.model", "checkpoints/step-6/state.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f)
        }
        let lines = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.contains("\"loss\"") }.count, 6)
        let again = try PruneExecutable.runFinetune(args(out))
        assertOneLineError(again, containing: "holds an earlier run; continue it with --resume \(out.path)")
        let advised = try PruneExecutable.runFinetune(["--resume", out.path, "--steps", "7"])
        XCTAssertEqual(advised.status, 0, "the advice works: \(advised.stderr)")
    }

    /// `-o` naming the model: its config.json is the checkpoint's, not an earlier run, so --resume is not advised, and
    /// --resume on it says which key a run's config.json would have.
    func testTheModelDirectoryIsNeitherAnOutputNorARun() throws {
        let (_, model) = try PruneExecutable.scratchWithModel("finetune-into-model")
        defer { try? FileManager.default.removeItem(at: model.deletingLastPathComponent()) }
        let before = try Data(contentsOf: model.appendingPathComponent("config.json"))
        var a = args(model)
        a[0] = model.path
        let r = try PruneExecutable.runFinetune(a)
        assertOneLineError(r, containing: "-o: \(model.path) is the model directory")
        XCTAssertFalse(r.stderr.contains("--resume"), r.stderr)
        let resumed = try PruneExecutable.runFinetune(["--resume", model.path])
        assertOneLineError(resumed, containing: "\(model.path)/config.json: not a finetune run's config.json")
        XCTAssertTrue(resumed.stderr.contains("missing key \"model\""), resumed.stderr)
        XCTAssertFalse(resumed.stderr.contains("DecodingError"), resumed.stderr)

        let checkpoint = scratch.appendingPathComponent("holds-a-checkpoint")
        try FileManager.default.copyItem(at: Fixtures.stories260K, to: checkpoint)
        assertOneLineError(try PruneExecutable.runFinetune(args(checkpoint)), containing: "not a finetune run's (a checkpoint?)")
        XCTAssertEqual(try Data(contentsOf: model.appendingPathComponent("config.json")), before, "the model is untouched")
    }

    func testBadFlagsAreOneLineNamingTheFlag() throws {
        let out = scratch.appendingPathComponent("bad")
        let cases: [([String], String)] = [
            (["--rank", "0"], "--rank"), (["--dropout", "1.5"], "--dropout"), (["--schedule", "wavy"], "--schedule"),
            (["--train-layers", "last:9"], "--train-layers"), (["--targets", "q,zz"], "--targets"), (["--lr", "-1"], "--lr"),
        ]
        for (extra, flag) in cases {
            let r = try PruneExecutable.runFinetune(args(out, extra))
            XCTAssertNotEqual(r.status, 0, "\(extra)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(extra): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(flag), "\(extra): \(r.stderr)")
        }
        let noData = try PruneExecutable.runFinetune([Fixtures.stories260K.path, "--lora", "--dataset", "/nonexistent.jsonl", "-o", out.path])
        XCTAssertEqual(noData.status, 1)
        XCTAssertTrue(noData.stderr.contains("/nonexistent.jsonl"), noData.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing written for a refused run")
    }

    func testKillNineAtRandomMomentsNeverLeavesACorruptCheckpoint() throws {
        let out = scratch.appendingPathComponent("killed")
        var rng = SeededGenerator(seed: 7)
        var a = args(out, ["--save-every", "1", "--steps", "12"])
        for attempt in 0..<4 {
            let p = Process()
            p.executableURL = PruneExecutable.finetune
            p.arguments = a
            p.standardError = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            usleep(UInt32.random(in: 150_000...900_000, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            // Every step-N directory that exists is complete; temporaries are hidden names the next run ignores.
            let dir = out.appendingPathComponent("checkpoints")
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where name.hasPrefix("step-") {
                for f in ["trainable.safetensors", "optimizer.safetensors", "state.json"] {
                    XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).appendingPathComponent(f).path),
                                  "attempt \(attempt): \(name)/\(f) missing")
                }
            }
            if FileManager.default.fileExists(atPath: out.appendingPathComponent("config.json").path) {
                a = ["--resume", out.path]
            }
        }
        let finish = try PruneExecutable.runFinetune(FileManager.default.fileExists(atPath: out.appendingPathComponent("config.json").path)
                                                     ? ["--resume", out.path] : a)
        XCTAssertEqual(finish.status, 0, finish.stderr)
        let lines = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let steps = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["loss"] != nil ? $0 : nil }
        XCTAssertEqual(steps.count, 12, "one loss line per step after the resumes")
    }

    /// Flags reach the options under their own names (the run's config.json holds them resolved): numbers, a
    /// --no-X flag, an enum, text forms (targets, last:K), --dtype by its canonical name; a flag left out keeps its
    /// default; and a resume keeps the saved value of every flag it does not give.
    func testTheFlagsGivenReachTheOptionsAndTheOthersKeepTheirDefaults() throws {
        let out = scratch.appendingPathComponent("flags")
        let r = try PruneExecutable.runFinetune(args(out, ["--steps", "1", "--rank", "4", "--targets", "q,v", "--lora-layers", "last:2",
                                                           "--weight-decay", "0.05", "--schedule", "linear", "--no-shuffle", "--seed", "7",
                                                           "--dtype", "float32", "--layer-dropout-shape", "uniform"]))
        XCTAssertEqual(r.status, 0, r.stderr)
        func saved() throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
        }
        let given = try saved()
        XCTAssertEqual(given["rank"] as? Int, 4)
        XCTAssertEqual(given["lr"] as? Double, 1e-3)
        XCTAssertEqual(given["targets"] as? [String], ["q_proj", "v_proj"])
        XCTAssertEqual(given["lora-layers"] as? [Int], [3, 4], "last:2 of stories260K's 5 layers")
        XCTAssertEqual(given["weight-decay"] as? Double, 0.05)
        XCTAssertEqual(given["schedule"] as? String, "linear")
        XCTAssertEqual(given["shuffle"] as? Bool, false)
        XCTAssertEqual(given["seed"] as? Int, 7)
        XCTAssertEqual(given["dtype"] as? String, "f32", "float32 kept by its canonical name")
        XCTAssertEqual(given["layer-dropout-shape"] as? String, "uniform")
        // Left out: the library's defaults.
        XCTAssertEqual(given["beta2"] as? Double, 0.999)
        XCTAssertEqual(given["packing"] as? Bool, true)
        XCTAssertEqual(given["alpha"] as? Double, 16)
        XCTAssertEqual(given["max-grad-norm"] as? Double, 1)
        XCTAssertNil(given["valid"], "no --valid: every 20th record")
        let resumed = try PruneExecutable.runFinetune(["--resume", out.path, "--steps", "2", "--dtype", "f32"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let after = try saved()
        XCTAssertEqual(after["steps"] as? Int, 2)
        XCTAssertEqual(after["rank"] as? Int, 4, "the saved value, not the default")
        XCTAssertEqual(after["shuffle"] as? Bool, false)
        XCTAssertEqual(after["lora-layers"] as? [Int], [3, 4])
    }

    /// Every other setting's flag, given once, is found under its own name in config.json, those of the option groups
    /// finetune shares with prune (--context, --batch-size, --threads, --weights-dtype, --dtype) included: a flag whose
    /// property name does not spell its setting's key would be refused here, not left silently unapplied. Every flag
    /// `finetune --help` lists is given here or in a test named below.
    func testEveryOtherFlagReachesItsSetting() throws {
        let out = scratch.appendingPathComponent("all")
        let settings: [(flag: [String], key: String, value: Any)] = [
            (["--context", "24"], "context", 24), (["--batch-size", "3"], "batch-size", 3), (["--threads", "1"], "threads", 1),
            (["--eval-tokens", "100"], "eval-tokens", 100), (["--alpha", "8"], "alpha", 8.0), (["--rank", "2"], "rank", 2),
            (["--valid", Fixtures.kjvValid.path], "valid", Fixtures.kjvValid.path), (["--no-packing"], "packing", false),
            (["--dropout", "0.1"], "dropout", 0.1), (["--lora-layers", "0-2"], "lora-layers", [0, 1, 2]),
            (["--train-layers", "last:1"], "train-layers", [4]), (["--train-lm-head"], "train-lm-head", true),
            (["--beta1", "0.8"], "beta1", 0.8), (["--beta2", "0.99"], "beta2", 0.99), (["--eps", "1e-6"], "eps", 1e-6),
            (["--decay-norms-and-biases"], "decay-norms-and-biases", true), (["--warmup-steps", "1"], "warmup-steps", 1),
            (["--max-grad-norm", "0.5"], "max-grad-norm", 0.5), (["--grad-accum", "2"], "grad-accum", 2), (["--epochs", "2"], "epochs", 2),
            (["--gradient-checkpointing"], "gradient-checkpointing", true), (["--early-exit-loss"], "early-exit-loss", true),
            (["--early-exit-scale", "0.5"], "early-exit-scale", 0.5), (["--early-exit-curriculum", "gradual"], "early-exit-curriculum", "gradual"),
            (["--layer-dropout", "0.1"], "layer-dropout", 0.1), (["--layer-dropout-schedule", "linear"], "layer-dropout-schedule", "linear"),
            (["--eval-every", "1"], "eval-every", 1), (["--save-every", "1"], "save-every", 1), (["--keep", "3"], "keep", 3),
            (["--weights-dtype", "f32"], "weights-dtype", "f32"), (["--keep-best"], "keep-best", true), (["--early-stop", "5"], "early-stop", 5),
            (["--force"], "force", true), (["--gguf"], "gguf", true), (["--compute", "f32"], "compute", "f32"),
        ]
        let given = [Fixtures.stories260K.path, "--lora", "--dataset", Fixtures.kjvValid.path, "--steps", "2", "--lr", "1e-3",
                     "-o", out.path] + settings.flatMap(\.flag)
        let r = try PruneExecutable.runFinetune(given)
        XCTAssertEqual(r.status, 0, r.stderr)
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
        for s in settings {
            XCTAssertEqual(saved[s.key] as? NSObject, s.value as? NSObject, "\(s.flag.joined(separator: " ")) → \(s.key)")
        }
        let help = try PruneExecutable.runFinetune(["--help"], environment: ["COLUMNS": "1000"]).stdout
        // The option rows ("  --lr <lr>  …", "  -o, --output <output>  …"), not the examples of the discussion.
        let listed = Set(help.split(separator: "\n").filter { $0.hasPrefix("  -") }.compactMap { row in
            row.split(separator: " ").first { $0.hasPrefix("--") }.map(String.init)
        })
        let elsewhere: Set = ["--targets", "--weight-decay", "--schedule", "--no-shuffle", "--seed", "--dtype", "--layer-dropout-shape", // testTheFlagsGiven…
                              "--init-adapter",                                                  // testAnInitialAdapterTrainsAsItIs…
                              "--teacher", "--distill-weight", "--distill-temperature", "--distill-hidden",   // DistillationCommandTests
                              "--resume", "--output", "--help", "--version"]
        let uncovered = listed.subtracting(given.filter { $0.hasPrefix("--") }).subtracting(elsewhere)
        XCTAssertEqual(uncovered, [], "flags of finetune --help that no test gives")
        XCTAssertGreaterThan(listed.count, 40, "the help's flags were read")
    }

    func testResumeRefusesAChangedFlag() throws {
        let out = scratch.appendingPathComponent("r")
        XCTAssertEqual(try PruneExecutable.runFinetune(args(out, ["--steps", "2"])).status, 0)
        let r = try PruneExecutable.runFinetune(["--resume", out.path, "--lr", "5e-3"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("--lr"), r.stderr)
        let ok = try PruneExecutable.runFinetune(["--resume", out.path, "--steps", "4"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
    }

    /// A rank-4 PEFT adapter given to --init-adapter with no --rank trains at rank 4 (PEFT reads r, alpha, targets and
    /// layers from adapter_config.json); --rank 8 beside it is one line naming both; `prune merge` of the result
    /// runs the export self-check and writes a card that says the model was retrained.
    func testAnInitialAdapterTrainsAsItIsAndItsMergeIsChecked() throws {
        let first = scratch.appendingPathComponent("r4")
        let r = try PruneExecutable.runFinetune(args(first, ["--rank", "4", "--alpha", "8", "--targets", "q,v", "--lora-layers", "1-3"]))
        XCTAssertEqual(r.status, 0, r.stderr)
        let adapter = first.appendingPathComponent("adapter").path
        let second = scratch.appendingPathComponent("continued")
        let c = try PruneExecutable.runFinetune([Fixtures.stories260K.path, "--init-adapter", adapter, "--dataset", Fixtures.kjvValid.path,
                                                 "--context", "32", "--batch-size", "2", "--steps", "2", "-o", second.path])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stderr.contains("LoRA r=4 alpha=8.0 on q_proj,v_proj"), c.stderr)
        let config = try String(contentsOf: second.appendingPathComponent("adapter/adapter_config.json"), encoding: .utf8)
        XCTAssertTrue(config.contains("\"r\": 4"), config)
        let wrong = try PruneExecutable.runFinetune([Fixtures.stories260K.path, "--init-adapter", adapter, "--rank", "8",
                                                     "--dataset", Fixtures.kjvValid.path, "-o", scratch.appendingPathComponent("w").path])
        XCTAssertEqual(wrong.status, 1)
        XCTAssertEqual(wrong.stderr.split(separator: "\n").count, 1, wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("r 4") && wrong.stderr.contains("--rank 8"), wrong.stderr)

        let merged = scratch.appendingPathComponent("merged")
        let m = try PruneExecutable.run(["merge", Fixtures.stories260K.path, "--adapter", adapter, "-o", merged.path])
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertTrue(m.stdout.contains("self-check: the merged files' logits are within"), m.stdout)
        let card = try String(contentsOf: merged.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(card.contains("retrained") && card.contains("`\(adapter)`"), card)
    }

    /// A checkpoint's state.json that lost a key is one line naming the file and the key, not a DecodingError.
    func testAStateWithoutAKeyIsOneLineNamingIt() throws {
        let out = scratch.appendingPathComponent("s")
        XCTAssertEqual(try PruneExecutable.runFinetune(args(out, ["--steps", "2"])).status, 0)
        let state = out.appendingPathComponent("checkpoints/step-2/state.json")
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: state)) as? [String: Any])
        var options = try XCTUnwrap(object["options"] as? [String: Any])
        options["dataset"] = nil
        object["options"] = options
        try JSONSerialization.data(withJSONObject: object).write(to: state)
        let r = try PruneExecutable.runFinetune(["--resume", out.path, "--steps", "4"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").last.map(String.init),
                       "error: \(state.path): not a training state: missing key \"options.dataset\"", "after the model's log lines")
        XCTAssertFalse(r.stderr.contains("DecodingError"), r.stderr)
    }
}

final class EvalReferenceCommandTests: XCTestCase {
    func testEvalAgainstTheOriginalReportsKLAndAgreement() throws {
        let dir = try Fixtures.temporaryDirectory("eval-reference")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cut = dir.appendingPathComponent("cut")
        XCTAssertEqual(try PruneExecutable.run(["cut", Fixtures.stories260K.path, "--layers", "2-3", "-o", cut.path]).status, 0)
        let same = try PruneExecutable.run(["eval", Fixtures.stories260K.path, "--dataset", Fixtures.kjvValid.path, "--context", "64",
                                            "--reference", Fixtures.stories260K.path, "--json"])
        XCTAssertEqual(same.status, 0, same.stderr)
        let a = try JSONSerialization.jsonObject(with: Data(same.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(a["kl"] as! Double, 0, accuracy: 1e-9)
        XCTAssertEqual(a["top1_agreement"] as! Double, 1)
        let r = try PruneExecutable.run(["eval", cut.path, "--dataset", Fixtures.kjvValid.path, "--context", "64",
                                         "--reference", Fixtures.stories260K.path, "--json"])
        let b = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertGreaterThan(b["kl"] as! Double, 0.5)
        XCTAssertLessThan(b["top1_agreement"] as! Double, 0.9)
    }

}
