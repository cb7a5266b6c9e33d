// Keeps crash paths out of Sources: no `try!` and no `as!` anywhere; `fatalError` and `!`-unwraps only
// where the allow-list below says why no input can reach them. `.baseAddress!` on a buffer the code
// itself allocated with a non-zero count (Unsafe*BufferPointer idiom) is allowed everywhere. Comments and
// string literals are not code and are skipped. A new unwrap needs a line here with its reason, or a
// `guard let`; a stale line here fails too, so the list stays the truth.
import Foundation
import TestSupport
import XCTest

final class SourceHygieneTests: XCTestCase {
    /// (file under Sources, code it contains) → why it cannot trap on input.
    static let allowedUnwraps: [(file: String, code: String, reason: String)] = [
        ("Training/LlamaTrainingPass.swift", "dHead!", "allocated a few lines above whenever the head trains"),
        ("Llama/DecoderBlock.swift", "a.logSumExp!", "the backward reads activations a training forward saved, which keep the attention log-sum-exp"),
        ("Training/LlamaTrainingPass.swift", "shared!", "a layer has saved activations or the one shared set exists (checkpointing)"),
        ("Analysis/BlockRemovalScan.swift", "max()!", "the scan is called with at least one calibration batch"),
        ("Analysis/BlockRemovalScan.swift", "skip.min()!", "a block to skip has at least one layer"),
        ("Cluster/Communicator.swift", "encode(value!)", "the root rank passes the value it broadcasts"),
        ("Cluster/MPICommunicator.swift", "pk_mpi_load()!", "the loader returns a pointer to its static result"),
        ("Training/LlamaTrainingPass.swift", "exitNormed!", "allocated, with exitRstd[l], whenever an exit other than the last is on"),
        ("Training/LlamaTrainingPass.swift", "dPassThrough!", "allocated whenever a sample skips a layer"),
        ("Llama/ReferenceComparison.swift", "groups[length]!", "the key comes from the grouping itself"),
        ("Generation/SelfSpeculativeGenerator.swift", "s.min()!", "a skip draft is refused when its set is empty"),
        ("Recipes/LayerSelector.swift", "dropped.last!", "dropped.last! and .first! behind dropped.count >= 1"),
        ("Recipes/RecipeRunner.swift", "modelKeys[", "every model directory of the run has its key recorded when it is made"),
        ("PruneCLI/CutCommand.swift", "count!", "validate() requires --count with --metric"),
        ("Llama/DecoderBlock.swift", "firstIndex(of: p)!", "p is a case of Projection.allCases"),
        ("Reports/HeatMapSVG.swift", "defined.max()!", "inside min().map: the list is not empty"),
        ("Reports/HeatMapSVG.swift", "c!", "markedRows holds only rows with a column"),
        ("Reports/LayerProfileSVG.swift", "panel.values[$0]!", "indices filtered to non-nil values above"),
        ("Bench/BenchmarkShapes.swift", "config!", "a shape without a directory always has a config"),
        ("Training/TrainableSet.swift", "configuration.lora!", "LoRA parameters exist only when configuration.lora is set"),
        ("Analysis/CalibrationBatch.swift", "lengths.max()!", "CalibrationSamples.select refuses an empty selection"),
        ("Analysis/CalibrationBatch.swift", "s.last!", "selected samples have two or more tokens"),
        ("Analysis/LayerAnalyzer.swift", ".max()!", "analyze(samples:) requires samples (precondition; select refuses none)"),
        ("Analysis/LayerAnalyzer.swift", "earlyExit!", "set in the same function when options.earlyExit"),
        ("Support/LayerSelection.swift", "ends.last!", "split(omittingEmptySubsequences: false) never returns []"),
        ("Tensor/BLASRuntime.swift", "pk_blas_load(wanted)!", "the C loader returns a pointer to a static result"),
        ("Tokenizers/ChatTemplateValue.swift", "storage[$0]!", "keys and storage are kept in step"),
        ("Tokenizers/BPESplitPattern.swift", "Unicode.Scalar(scalar.value + 32)!", "A–Z plus 32 is a–z"),
        ("Tokenizers/BPEByteLevel.swift", "Unicode.Scalar(UInt32(byte))!", "bytes below 256 are scalars"),
        ("Tokenizers/BPEByteLevel.swift", "Unicode.Scalar(next)!", "GPT-2's table stays below U+0200"),
    ]

    /// (file, code) → why `fatalError` cannot be reached from input.
    static let allowedFatalErrors: [(file: String, code: String, reason: String)] = [
        ("Tensor/Gemm.swift", "fatalError(\"\\(error)\")", "OpenBLAS missing: every command loads it first and reports it as an error line"),
        ("Tensor/MatrixVector.swift", "fatalError(\"out of memory for a", "malloc of ≤ 16 rows × hidden floats, grown once per thread: out of memory, where Swift's own allocations trap too"),
    ]

    /// Every Swift source line of Sources, comments and string literals blanked, and the line as written.
    func codeLines() throws -> [(file: String, line: Int, code: String, original: String)] {
        let sources = Fixtures.projectRoot.appendingPathComponent("Sources")
        let files = (FileManager.default.enumerator(atPath: sources.path)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".swift") }.sorted()
        XCTAssertGreaterThan(files.count, 100)
        let literal = try NSRegularExpression(pattern: #""(\\.|[^"\\])*""#)
        var out: [(String, Int, String, String)] = []
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                var line = String(raw)
                line = literal.stringByReplacingMatches(in: line, range: NSRange(line.startIndex..., in: line), withTemplate: "\"\"")
                if let comment = line.range(of: "//") { line = String(line[..<comment.lowerBound]) }
                if !line.trimmingCharacters(in: .whitespaces).isEmpty { out.append((file, i + 1, line, String(raw))) }
            }
        }
        return out
    }

    func testNoTryBangOrAsBang() throws {
        for (file, line, code, _) in try codeLines() where code.contains("try!") || code.contains("as!") {
            XCTFail("\(file):\(line): \(code.trimmingCharacters(in: .whitespaces))")
        }
    }

    func testFatalErrorsAndForceUnwrapsOnlyWhereAllowed() throws {
        let unwrap = try NSRegularExpression(pattern: #"[A-Za-z0-9_)\]]!(?!=)"#)
        var usedUnwraps = Set<Int>(), usedFatal = Set<Int>()
        var unwrapCount = 0
        // Allowed fatalErrors are matched against the line as written (their code holds a string literal).
        for (file, line, code, original) in try codeLines() {
            if code.contains("fatalError(") {
                if let i = Self.allowedFatalErrors.firstIndex(where: { file == $0.file && original.contains($0.code) }) {
                    usedFatal.insert(i)
                } else {
                    XCTFail("\(file):\(line): fatalError reachable? \(code.trimmingCharacters(in: .whitespaces)) — throw a PruneError, or add it to allowedFatalErrors with the reason")
                }
            }
            let withoutBuffers = code.replacingOccurrences(of: ".baseAddress!", with: ".baseAddress")
            for match in unwrap.matches(in: withoutBuffers, range: NSRange(withoutBuffers.startIndex..., in: withoutBuffers)) {
                _ = match
                unwrapCount += 1
                if let i = Self.allowedUnwraps.firstIndex(where: { file == $0.file && code.contains($0.code) }) {
                    usedUnwraps.insert(i)
                } else {
                    XCTFail("\(file):\(line): force unwrap: \(code.trimmingCharacters(in: .whitespaces)) — use guard let, or add it to allowedUnwraps with the reason")
                }
            }
        }
        for (i, entry) in Self.allowedUnwraps.enumerated() where !usedUnwraps.contains(i) {
            XCTFail("stale allow-list entry: \(entry.file) \(entry.code)")
        }
        for (i, entry) in Self.allowedFatalErrors.enumerated() where !usedFatal.contains(i) {
            XCTFail("stale allow-list entry: \(entry.file) \(entry.code)")
        }
        print("source hygiene: \(unwrapCount) force unwraps, all allowed (\(Self.allowedUnwraps.count) entries); \(usedFatal.count) fatalError")
    }

    func testTheCheckSeesWhatItForbids() throws {
        // The patterns catch what they are meant to (so that a clean run means something).
        let unwrap = try NSRegularExpression(pattern: #"[A-Za-z0-9_)\]]!(?!=)"#)
        for code in ["let x = dict[key]!", "f(y!)", "a.first!.b", "(z)!"] {
            XCTAssertEqual(unwrap.numberOfMatches(in: code, range: NSRange(code.startIndex..., in: code)), 1, code)
        }
        for code in ["if a != b {}", "guard !flag", "x.baseAddress"] {
            XCTAssertEqual(unwrap.numberOfMatches(in: code, range: NSRange(code.startIndex..., in: code)), 0, code)
        }
    }
}
