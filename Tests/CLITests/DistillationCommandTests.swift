// `finetune --teacher` as a user runs it: the cut stories260K (layers 2-3 dropped) as the student, the shipped
// stories260K as its teacher. α = 0 with a teacher is the plain run bit for bit; a distilled step's loss is its logged
// parts weighed by α, τ and β, and its cross-entropy part the plain run's loss; bad settings and bad teachers are one
// line; a resume continues a distilled run exactly and refuses a changed teacher setting.
import Foundation
import Support
import TestSupport
import XCTest

final class DistillationCommandTests: XCTestCase {
    var scratch: URL!
    var student: URL { scratch.appendingPathComponent("cut") }
    let teacher = Fixtures.stories260K.path

    override func setUpWithError() throws {
        try PruneExecutable.requireBuilt()
        scratch = try Fixtures.temporaryDirectory("distill-cli")
        let cut = try PruneExecutable.run(["cut", Fixtures.stories260K.path, "--layers", "2-3", "-o", student.path])
        XCTAssertEqual(cut.status, 0, cut.stderr)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    func args(_ out: URL, _ extra: [String] = []) -> [String] {
        [student.path, "--lora", "--dataset", Fixtures.kjvValid.path, "--context", "32", "--batch-size", "2", "--steps", "2",
         "--lr", "1e-3", "--eval-tokens", "200", "--threads", "2", "-o", out.path] + extra
    }

    /// metrics.jsonl's training lines (those with a "loss"), in step order.
    func steps(_ out: URL) throws -> [[String: Any]] {
        try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["loss"] != nil }
    }

    func number(_ line: [String: Any], _ key: String) -> Double { line[key] as? Double ?? .nan }

    func testAlphaZeroIsThePlainRunAndADistilledLossIsItsParts() throws {
        let plain = scratch.appendingPathComponent("plain"), zero = scratch.appendingPathComponent("zero")
        let distilled = scratch.appendingPathComponent("distilled")
        for (out, extra) in [(plain, []), (zero, ["--teacher", teacher, "--distill-weight", "0"]),
                             (distilled, ["--teacher", teacher, "--distill-weight", "0.5", "--distill-hidden", "0.1"])] {
            let r = try PruneExecutable.runFinetune(args(out, extra))
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let p = try steps(plain), z = try steps(zero), d = try steps(distilled)
        XCTAssertEqual(p.count, 2)
        for (a, b) in zip(p, z) {
            XCTAssertEqual(number(a, "loss"), number(b, "loss"), "α = 0: the plain loss bit for bit")
            XCTAssertEqual(number(a, "grad_norm"), number(b, "grad_norm"), "α = 0: the plain gradient bit for bit")
            XCTAssertEqual(number(b, "ce"), number(b, "loss"), accuracy: 1e-12 * number(b, "loss"), "α = 0: the loss is the cross-entropy")
            XCTAssertNil(a["ce"], "a plain run logs no parts")
            XCTAssertNil(b["hidden"], "no hidden part without --distill-hidden")
        }
        for line in d {
            let total = 0.5 * number(line, "ce") + 0.5 * 2 * 2 * number(line, "kl") + 0.1 * number(line, "hidden")
            XCTAssertEqual(number(line, "loss"), total, accuracy: 1e-9 * total, "(1 − α)·CE + α·τ²·KL + β·hidden, τ = 2 by default")
            XCTAssertGreaterThan(number(line, "kl"), 0.01, "the cut disagrees with its original")
            XCTAssertGreaterThan(number(line, "hidden"), 0)
        }
        // Step 1 trains the cut as it is (LoRA's B starts at zero) on the same batch: its CE part is the plain loss.
        XCTAssertEqual(number(d[0], "ce"), number(p[0], "loss"), accuracy: 1e-9 * number(p[0], "loss"))
        XCTAssertNotEqual(number(d[0], "loss"), number(p[0], "loss"))

        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: distilled.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
        XCTAssertEqual(saved["teacher"] as? String, teacher)
        XCTAssertEqual(saved["distill-weight"] as? Double, 0.5)
        XCTAssertEqual(saved["distill-temperature"] as? Double, 2, "the default, saved resolved")
        XCTAssertEqual(saved["distill-hidden"] as? Double, 0.1)
        let plainSaved = try JSONSerialization.jsonObject(with: Data(contentsOf: plain.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
        XCTAssertEqual(plainSaved.keys.filter { $0.hasPrefix("distill") || $0 == "teacher" }, [], "no teacher: no distillation settings")
        let card = try String(contentsOf: distilled.appendingPathComponent("merged/README.md"), encoding: .utf8)
        XCTAssertTrue(card.contains("distilled from `\(teacher)` with α = 0.5, τ = 2.0, hidden-state weight β = 0.1"), "the card names the teacher")
    }

    func testBadDistillationSettingsAndTeachersAreOneLine() throws {
        let out = scratch.appendingPathComponent("bad")
        let otherVocabulary = Fixtures.directory.appendingPathComponent("checkpoints/untied-f32").path
        let cases: [([String], String)] = [
            (["--distill-weight", "0.3"], "--distill-weight: needs a teacher"),
            (["--distill-temperature", "3"], "--distill-temperature: needs a teacher"),
            (["--teacher", teacher, "--distill-weight", "1.5"], "--distill-weight: must be in [0, 1], got 1.5"),
            (["--teacher", teacher, "--distill-temperature", "0"], "--distill-temperature: must be positive"),
            (["--teacher", teacher, "--distill-hidden=-1"], "--distill-hidden: must be ≥ 0"),
            (["--teacher", scratch.appendingPathComponent("no-such-teacher").path], "no-such-teacher: model directory not found"),
            (["--teacher", otherVocabulary], "--teacher \(otherVocabulary): vocabulary of 96 tokens, the student's has 512"),
            (["--teacher", out.appendingPathComponent("merged").path], "is inside the output directory"),
        ]
        for (extra, phrase) in cases {
            // The run's log may come first (a teacher's vocabulary is known once it is loaded): one error line, the last.
            let r = try PruneExecutable.runFinetune(args(out, extra))
            XCTAssertEqual(r.status, 1, "\(extra)")
            let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }
            XCTAssertEqual(errors.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.hasSuffix("\(errors.first ?? "")\n") && errors.first?.contains(phrase) == true, "\(phrase) in: \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(extra): nothing written for a refused run")
        }
    }

    func testAResumeContinuesExactlyAndRefusesAnotherTeacherSetting() throws {
        let whole = scratch.appendingPathComponent("whole"), parts = scratch.appendingPathComponent("parts")
        // A constant rate: --steps may change on resume, and cosine's rate depends on it.
        let distil = ["--teacher", teacher, "--distill-temperature", "1.5", "--schedule", "constant"]
        XCTAssertEqual(try PruneExecutable.runFinetune(args(whole, distil + ["--steps", "4"])).status, 0)
        XCTAssertEqual(try PruneExecutable.runFinetune(args(parts, distil)).status, 0)
        for (changed, flag) in [(["--distill-weight", "0.3"], "--distill-weight"), (["--distill-temperature", "2"], "--distill-temperature"),
                                (["--distill-hidden", "0.1"], "--distill-hidden"), (["--teacher", student.path], "--teacher")] {
            let r = try PruneExecutable.runFinetune(["--resume", parts.path, "--steps", "4"] + changed)
            XCTAssertEqual(r.status, 1, "\(changed)")
            XCTAssertTrue(r.stderr.contains("error: \(flag): differs from the run being resumed"), r.stderr)
        }
        let resumed = try PruneExecutable.runFinetune(["--resume", parts.path, "--steps", "4"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let a = try steps(whole), b = try steps(parts)
        XCTAssertEqual(b.count, 4)
        for (x, y) in zip(a, b) {
            for key in ["loss", "ce", "kl", "grad_norm"] { XCTAssertEqual(number(x, key), number(y, key), "step \(x["step"] ?? "?") \(key)") }
        }
        // A run without a teacher does not become a distilled one on resume.
        let plain = scratch.appendingPathComponent("plain")
        XCTAssertEqual(try PruneExecutable.runFinetune(args(plain)).status, 0)
        let r = try PruneExecutable.runFinetune(["--resume", plain.path, "--steps", "4", "--teacher", teacher])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("differs from the run being resumed") && r.stderr.contains("--teacher"), r.stderr)
    }
}
