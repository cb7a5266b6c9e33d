// Paths to the ground truth shipped in the repository (Tests/Fixtures, Checkpoints, Recipes/data) and
// to the large SmolLM2-135M checkpoint that tests skip without; helpers shared by the test targets.
import Foundation
import Support
import XCTest

/// Locations of the ground-truth files, all inside the repository so a fresh clone tests alone.
public enum Fixtures {
    /// The project root (the directory holding Package.swift).
    public static let projectRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// Tests/Fixtures: small files transformers, PEFT, sentencepiece and tokenizers wrote (see ORIGIN.md there).
    public static let directory: URL = projectRoot.appendingPathComponent("Tests/Fixtures")

    /// A file or folder under Tests/Fixtures, e.g. "tokenizers/smollm2".
    public static func file(_ relativePath: String) -> URL { directory.appendingPathComponent(relativePath) }

    /// The shipped default checkpoint: llama2.c's TinyStories 260K in HF layout (5 layers, SentencePiece).
    public static let stories260K: URL = projectRoot.appendingPathComponent("Checkpoints/stories260K")

    /// The shipped KJV validation set (Joshua, Ruth; 28 chapters of {"text": ...}).
    public static let kjvValid: URL = projectRoot.appendingPathComponent("Recipes/data/kjv-valid.jsonl")

    /// The real 30-layer SmolLM2-135M: $PRUNE_SMOLLM2, else ~/.cache/prune-dev/smollm2-135m.
    public static var smolLM2Directory: URL {
        URL(fileURLWithPath: ProcessInfo.processInfo.environment["PRUNE_SMOLLM2"]
            ?? NSHomeDirectory() + "/.cache/prune-dev/smollm2-135m")
    }

    /// The SmolLM2-135M checkpoint, or a skip (with the reason printed) where it has not been built.
    public static func smolLM2() throws -> URL {
        let dir = smolLM2Directory
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) else {
            throw skip("SmolLM2-135M not built at \(dir.path): run scripts/get-smollm2.sh (or set PRUNE_SMOLLM2)")
        }
        return dir
    }

    /// An XCTSkip whose reason is also printed, so a skipped test says why in any log.
    public static func skip(_ reason: String) -> XCTSkip {
        print("skipped: \(reason)")
        return XCTSkip(reason)
    }

    /// A fresh temporary directory, removed by the caller (or left for the OS).
    public static func temporaryDirectory(_ name: String = "prune-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs the built `prune` executable (a sibling of the test bundle in the build folder).
public enum PruneExecutable {
    public static var url: URL { sibling("prune") }

    /// The built `finetune` executable.
    public static var finetune: URL { sibling("finetune") }

    /// Throws a skip when `prune` has not been built (the CLI tests run it as a child process).
    public static func requireBuilt() throws {
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw Fixtures.skip("no prune executable at \(url.path); build it with `swift build`")
        }
    }

    /// A fresh scratch directory named after `name`, holding a copy of stories260K at scratch/model, for a test that
    /// runs `prune` on it (skipped when `prune` has not been built): a wrongly accepted output, or a poisoned weight,
    /// then never touches the repository's checkpoint.
    public static func scratchWithModel(_ name: String) throws -> (scratch: URL, model: URL) {
        try requireBuilt()
        let scratch = try Fixtures.temporaryDirectory(name)
        let model = scratch.appendingPathComponent("model")
        try FileManager.default.copyItem(at: Fixtures.stories260K, to: model)
        return (scratch, model)
    }

    static func sibling(_ name: String) -> URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments.first { $0.hasSuffix(".xctest") } ?? Bundle.main.executablePath ?? "")
        return bundle.deletingLastPathComponent().appendingPathComponent(name)
    }

    /// Exit status, stdout and stderr of `finetune args…`.
    public static func runFinetune(_ args: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try ChildProcess.run(finetune.path, args, environment: environment)
        return (r.status, r.stdout, r.stderr)
    }

    /// Exit status, stdout and stderr of `prune args…`.
    public static func run(_ args: [String], currentDirectory: URL? = nil, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try ChildProcess.run(url.path, args, environment: environment, directory: currentDirectory)
        return (r.status, r.stdout, r.stderr)
    }
}

/// Asserts that a command failed with one line on stderr, "error: …", containing `phrase`.
public func assertOneLineError(_ r: (status: Int32, stdout: String, stderr: String), containing phrase: String,
                               file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertNotEqual(r.status, 0, file: file, line: line)
    XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr, file: file, line: line)
    XCTAssertTrue(r.stderr.hasPrefix("error: "), r.stderr, file: file, line: line)
    XCTAssertTrue(r.stderr.contains(phrase), r.stderr, file: file, line: line)
}
