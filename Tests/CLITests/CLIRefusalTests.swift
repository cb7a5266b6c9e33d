// The same answers from every command: outputs that would land in the model directory or over earlier
// results are refused without --force, impossible options are one error line, lengths past
// max_position_embeddings warn, and a checkpoint without a tokenizer is told what needs one.
import Foundation
import TestSupport
import XCTest

final class CLIRefusalTests: XCTestCase {
    var scratch: URL!
    var model: URL!
    let dataset = Fixtures.kjvValid.path

    override func setUpWithError() throws {
        (scratch, model) = try PruneExecutable.scratchWithModel("cli-refusal")
    }

    override func tearDown() { if let scratch { try? FileManager.default.removeItem(at: scratch) } }

    typealias Result = (status: Int32, stdout: String, stderr: String)

    func prune(_ arguments: [String]) throws -> Result { try PruneExecutable.run(arguments) }


    func analyze(to output: URL, _ extra: [String] = []) throws -> Result {
        try prune(["analyze", model.path, "--dataset", dataset, "--samples", "2", "--context", "16", "-o", output.path] + extra)
    }

    /// --compute bf16 where it cannot run is one line naming what is missing: oneDNN capped below bf16 instructions
    /// (ONEDNN_MAX_CPU_ISA=AVX2) where oneDNN is installed, oneDNN itself where it is not, the CPU's bf16 units where
    /// it has none. Nothing is written.
    func testComputeBF16WhereItCannotRunIsOneLine() throws {
        let env = ["ONEDNN_MAX_CPU_ISA": "AVX2"]
        let eval = try PruneExecutable.run(["eval", model.path, "--dataset", dataset, "--compute", "bf16"], environment: env)
        assertOneLineError(eval, containing: "--compute bf16")
        let out = scratch.appendingPathComponent("healed")
        let finetune = try PruneExecutable.runFinetune([model.path, "--dataset", dataset, "--lora", "--steps", "1", "--context", "16",
                                                        "--compute", "bf16", "-o", out.path], environment: env)
        assertOneLineError(finetune, containing: "--compute bf16")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing written")
        assertOneLineError(try prune(["eval", model.path, "--dataset", dataset, "--compute", "f16"]), containing: "compute")
    }

    func testCutReplaceNamesWhatItNeeds() throws {
        let out = scratch.appendingPathComponent("replaced")
        assertOneLineError(try prune(["cut", model.path, "--layers", "2-3", "--replace", "merge", "-o", out.path]),
                           containing: "--replace must be replaceme or laco")
        assertOneLineError(try prune(["cut", model.path, "--layers", "2-3", "--replace", "replaceme", "-o", out.path]),
                           containing: "--replace replaceme needs calibration data")
        assertOneLineError(try prune(["cut", model.path, "--layers", "2-3", "--dataset", dataset, "-o", out.path]),
                           containing: "--dataset goes with --block, --metric or --replace replaceme")
        assertOneLineError(try prune(["cut", model.path, "--layers", "2-3", "--replace", "replaceme", "--calibration", dataset,
                                      "--samples", "1", "--context", "16", "-o", out.path]),
                           containing: "not determined by 16 calibration tokens")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing written")
        let laco = try prune(["cut", model.path, "--layers", "2-3", "--replace", "laco", "-o", out.path])
        XCTAssertEqual(laco.status, 0, laco.stderr)
    }

    func testAnalyzeRefusesTheModelDirectoryAndPlacesInsideIt() throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: model.path).sorted()
        assertOneLineError(try analyze(to: model), containing: "is the model directory itself")
        assertOneLineError(try analyze(to: model.appendingPathComponent("analysis")), containing: "inside the model directory")
        assertOneLineError(try analyze(to: model, ["--force"]), containing: "is the model directory itself")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: model.path).sorted(), before, "nothing written into the model")
    }

    func testAnalyzeRefusesToReplaceAnEarlierAnalysisWithoutForce() throws {
        let out = scratch.appendingPathComponent("analysis")
        let first = try analyze(to: out)
        XCTAssertEqual(first.status, 0, first.stderr)
        let json = try Data(contentsOf: out.appendingPathComponent("analysis.json"))
        assertOneLineError(try analyze(to: out), containing: "already holds an analysis (analysis.json, analysis.h5, analysis.svg, analysis-layers.svg); use --force")
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("analysis.json")), json, "the earlier analysis is untouched")
        let forced = try analyze(to: out, ["--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        // A directory holding other files only is fine.
        let other = scratch.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: other.appendingPathComponent("notes.txt"))
        XCTAssertEqual(try analyze(to: other).status, 0)
    }

    func testZeroThreadsIsRefused() throws {
        assertOneLineError(try prune(["eval", model.path, "--dataset", dataset, "--threads", "0"]), containing: "--threads: must be at least 1")
        assertOneLineError(try prune(["generate", model.path, "--prompt", "Once", "--threads", "0"]), containing: "--threads: must be at least 1")
        assertOneLineError(try analyze(to: scratch.appendingPathComponent("a"), ["--threads", "0"]), containing: "--threads: must be at least 1")
        assertOneLineError(try prune(["bench", "--threads", "0", "--no-pytorch"]), containing: "--threads: must be at least 1")
    }

    func testLengthsPastMaxPositionEmbeddingsWarn() throws {
        // stories260K has max_position_embeddings 512.
        let eval = try prune(["eval", model.path, "--dataset", dataset, "--context", "600", "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertEqual(eval.stderr, "warning: --context is 600 tokens, more than max_position_embeddings 512 of \(model.path); using 512\n")
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)), "stdout stays JSON")

        let analyze = try analyze(to: scratch.appendingPathComponent("a"), ["--context", "513"])
        XCTAssertEqual(analyze.status, 0, analyze.stderr)
        XCTAssertTrue(analyze.stderr.contains("warning: --context is 513 tokens, more than max_position_embeddings 512"), analyze.stderr)

        let generate = try prune(["generate", model.path, "--prompt", "Once", "--max-tokens", "520"])
        XCTAssertEqual(generate.status, 0, generate.stderr)
        XCTAssertTrue(generate.stderr.contains("warning: the prompt plus --max-tokens is 522 tokens, more than max_position_embeddings 512"),
                      generate.stderr)

        let fits = try prune(["generate", model.path, "--prompt", "Once", "--max-tokens", "5"])
        XCTAssertFalse(fits.stderr.contains("warning"), "no warning when it fits: " + fits.stderr)
        XCTAssertTrue(fits.stderr.hasPrefix("prefill: "), "the speeds line: " + fits.stderr)
    }

    func testNegativeTemperatureParsesAndIsRefusedByValue() throws {
        let r = try prune(["generate", model.path, "--prompt", "Once", "--temperature", "-1"])
        assertOneLineError(r, containing: "--temperature must be ≥ 0 (0 is greedy), got -1")
        assertOneLineError(try prune(["generate", model.path, "--prompt", "Once", "--top-p", "-0.5"]), containing: "--top-p must be in (0, 1]")
        let sampled = try prune(["generate", model.path, "--prompt", "Once", "--temperature", "0.8", "--max-tokens", "3"])
        XCTAssertEqual(sampled.status, 0, sampled.stderr)
    }

    func testGenerateWithoutATokenizerSaysItNeedsOne() throws {
        let bare = scratch.appendingPathComponent("bare")
        try FileManager.default.createDirectory(at: bare, withIntermediateDirectories: true)
        for name in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: model.appendingPathComponent(name), to: bare.appendingPathComponent(name))
        }
        assertOneLineError(try prune(["generate", bare.path, "--prompt", "Once"]), containing: "\(bare.path): has no tokenizer.model or tokenizer.json; generating text needs")
        assertOneLineError(try prune(["tokenize", bare.path, "--text", "Once"]), containing: "tokenizing needs the checkpoint's tokenizer")
    }

    func testTokenizeShowsReadableTextBesideByteLevelPieces() throws {
        // tokenize needs only the tokenizer: the SmolLM2 tokenizer fixture serves as the directory.
        let r = try prune(["tokenize", Fixtures.file("tokenizers/smollm2").path, "--text", "Hi café ✓"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        XCTAssertTrue(lines.contains(#"37366 "ĠcafÃ©" " café""#), r.stdout)
        XCTAssertTrue(lines.contains(#"246 "ľ" (part of a character)"#), r.stdout)
        XCTAssertTrue(lines.contains(#"237 "ĵ" "✓""#), r.stdout)
        // SentencePiece pieces get their text in context too: "▁upon" adds " upon".
        let spm = try prune(["tokenize", model.path, "--text", "Once upon"])
        XCTAssertTrue(spm.stdout.contains(#""▁upon"  " upon""#), spm.stdout)
    }
}
