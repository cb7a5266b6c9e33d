// The command flows called as a library, as a recipe runner will: analyze → cut the best block from a
// fresh analysis → evaluate the cut, with remarks collected instead of printed.
import Checkpoint
import Finetuning
import Foundation
import Jobs
import Recipes
import Support
import Surgery
import TestSupport
import XCTest

final class PipelineJobTests: XCTestCase {
    /// A JobLog that keeps what it hears.
    final class Heard {
        var warnings: [String] = []
        var notes: [String] = []
        var log: JobLog { JobLog(warning: { self.warnings.append($0) }, note: { self.notes.append($0) }) }
    }

    func testAnalyzeCutAndEvaluateWithoutTheCommandLine() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let source = ModelSource(path: Fixtures.stories260K.path, parallelism: .init(threads: 1))
        let heard = Heard()
        let analyzeOptions = AnalyzeOptions(dataset: Fixtures.kjvValid, samples: 4, context: 600, blockSizes: "1-2", batchSize: 2)

        let analysis = try AnalyzeJob.run(source, options: analyzeOptions, output: scratch.appendingPathComponent("a"),
                                          quiet: true, log: heard.log)
        XCTAssertEqual(analysis.files.map(\.lastPathComponent), ["analysis.json", "analysis.h5", "analysis.svg", "analysis-layers.svg"])
        XCTAssertEqual(analysis.analysis.layers, 5)
        XCTAssertEqual(analysis.analysis.context, 512, "clipped to max_position_embeddings")
        XCTAssertEqual(heard.warnings.count, 1, "\(heard.warnings)")
        XCTAssertTrue(heard.warnings[0].contains("--context is 600 tokens"), heard.warnings[0])
        XCTAssertTrue(heard.notes.isEmpty, "quiet: no plan note")

        // The same choice from the written analysis.json and from a fresh analysis.
        let fromFile = CutOptions(method: .block(2), analysis: .file(analysis.files[0]), output: scratch.appendingPathComponent("c1"))
        let (choice, report) = try CutJob.run(source, options: fromFile, log: heard.log)
        var fresh = fromFile
        fresh.analysis = .fresh(analyzeOptions)
        fresh.output = scratch.appendingPathComponent("c2")
        let freshChoice = try CutJob.choose(source, options: fresh, quiet: true, log: .silent)
        XCTAssertEqual(choice.drop, freshChoice.drop)
        XCTAssertEqual(report.dropped, choice.drop.layers)
        XCTAssertEqual(report.kept.count, 3)
        XCTAssertTrue(choice.announcement?.hasPrefix("best block of 2: layers ") ?? false, "\(choice.announcement ?? "nil")")
        XCTAssertEqual(choice.selection.analysis, analysis.files[0].path)

        let full = try EvaluationJob.run(source, options: EvaluationOptions(dataset: Fixtures.kjvValid, context: 64))
        let cut = try EvaluationJob.run(ModelSource(path: report.output, parallelism: .init(threads: 1)),
                                        options: EvaluationOptions(dataset: Fixtures.kjvValid, context: 64))
        XCTAssertEqual(full.tokens, cut.tokens)
        XCTAssertGreaterThan(cut.loss, full.loss, "removing layers costs loss")
    }

    func testLayersAreChosenExactlyAsGiven() throws {
        let source = ModelSource(path: Fixtures.stories260K.path)
        let options = CutOptions(method: .layers("1,3"), output: URL(fileURLWithPath: "/nonexistent"))
        let choice = try CutJob.choose(source, options: options, log: .silent)
        XCTAssertEqual(choice.drop.layers, [1, 3])
        XCTAssertNil(choice.announcement)
        XCTAssertEqual(choice.selection.option, "--layers 1,3")
        let noAnalysis = CutOptions(method: .block(2), output: URL(fileURLWithPath: "/nonexistent"))
        XCTAssertThrowsError(try CutJob.choose(source, options: noAnalysis, log: .silent))
    }

    /// One output-dtype parser: cut/merge --dtype, finetune's --dtype and a recipe's cut.dtype / export.dtype accept the
    /// same names (any case) and refuse the same ones.
    func testEveryDTypeSurfaceAcceptsAndRefusesTheSameNames() throws {
        let quickstart = try String(contentsOf: Fixtures.projectRoot.appendingPathComponent("Recipes/quickstart.yaml"), encoding: .utf8)
        for (text, expected) in [("f32", SafetensorsDType.F32), ("float32", .F32), ("FP32", .F32), ("bf16", .BF16), ("BFloat16", .BF16),
                                 ("f16", .F16), ("float16", .F16), ("int8", nil), ("f64", nil), ("bf 16", nil)] as [(String, SafetensorsDType?)] {
            let parsed = try? SafetensorsDType.output(text)
            XCTAssertEqual(parsed, expected, text)
            var options = FinetuneOptions(model: "m", dataset: "d", output: "o")
            (options.lora, options.dtype) = (true, text)
            XCTAssertEqual((try? options.validate(layers: 5)) != nil, expected != nil, "finetune --dtype \(text)")
            for key in ["cut.dtype", "export.dtype"] {
                let recipe = try? Recipe.parse(quickstart, file: "quickstart.yaml", overrides: ["\(key)=\"\(text)\""],
                                               directory: Fixtures.projectRoot.appendingPathComponent("Recipes"))
                XCTAssertEqual(recipe != nil, expected != nil, "recipe \(key) \(text)")
            }
        }
    }

    /// Layer 0, the last layer and more than half of the layers are refused without force, with one line saying why;
    /// with force they are chosen as given.
    func testDamagingCutsAreRefusedWithoutForce() throws {
        let source = ModelSource(path: Fixtures.stories260K.path)   // 5 layers
        for (layers, phrase) in [("0-1", "layer 0"), ("4", "last layer"), ("1-3", "3 of 5 layers, more than half"), ("0,4", "layer 0")] {
            let options = CutOptions(method: .layers(layers), output: URL(fileURLWithPath: "/nonexistent"))
            XCTAssertThrowsError(try CutJob.choose(source, options: options, log: .silent), layers) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(phrase) && text.contains("--force") && !text.contains("\n"), text)
            }
            var forced = options
            forced.force = true
            XCTAssertEqual(try CutJob.choose(source, options: forced, log: .silent).drop.layers, try LayerSelection(parsing: layers).layers)
        }
        XCTAssertNil(CutDamageGuard.refusal(dropping: [1, 2], layerCount: 5), "two middle layers of five")
        XCTAssertNotNil(CutDamageGuard.refusal(dropping: Array(1...16), layerCount: 30))
        XCTAssertNil(CutDamageGuard.refusal(dropping: Array(11...18), layerCount: 30), "the block analyze recommends on SmolLM2")
    }

    /// A cut writes the mergekit config that builds the same model beside it, as mergekit itself does.
    func testACutWritesItsMergekitConfigBesideTheCheckpoint() throws {
        let scratch = try Fixtures.temporaryDirectory("mergekit-beside")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("cut")
        let source = ModelSource(path: Fixtures.stories260K.path)
        let (_, report) = try CutJob.run(source, options: CutOptions(method: .layers("2"), output: out, tool: "prune test"), log: .silent)
        let yaml = try String(contentsOf: out.appendingPathComponent("mergekit_config.yml"), encoding: .utf8)
        XCTAssertEqual(yaml, report.mergekitYAML)
        XCTAssertTrue(yaml.contains("layer_range: [0, 2]") && yaml.contains("layer_range: [3, 5]"), yaml)
        XCTAssertTrue(report.provenanceFiles.contains("mergekit_config.yml"))
        let card = try String(contentsOf: out.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(card.contains("It has not been retrained."))
        XCTAssertTrue(card.contains("`\(Fixtures.stories260K.path)`"), "the source as given")
    }

    func testTokenizeRowsCarryPiecesAndText() throws {
        let tokenizer = try ModelSource(path: Fixtures.stories260K.path).requiredTokenizer(for: "tokenizing")
        let rows = TokenizeJob.rows("Once upon a time", tokenizer: tokenizer)
        XCTAssertEqual(rows.map(\.id), [1, 403, 407, 261, 378])
        XCTAssertEqual(rows.map(\.text).joined(), "Once upon a time")
        XCTAssertFalse(rows.contains(where: \.partialCharacter))
    }
}
