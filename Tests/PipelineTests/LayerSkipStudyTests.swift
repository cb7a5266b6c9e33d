// `prune run Recipes/layerskip-kjv.yaml` end to end on stories260K with a few steps: every trained model is a
// checkpoint, exit:auto's output equals plain greedy's for every model, OUT/final carries a speculation.json that
// `prune generate --speculate` reads back, the report is written, a rerun skips every stage; and the layerskip
// section's refusals.
import Foundation
import Recipes
import Support
import TestSupport
import XCTest

final class LayerSkipStudyTests: XCTestCase {
    func testTheStudyRunsEndToEndThenARerunSkipsEveryStage() throws {
        let scratch = try Fixtures.temporaryDirectory("layerskip-study")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let recipe = try Recipe.load(RecipeTests.recipes.appendingPathComponent("layerskip-kjv.yaml"), overrides: [
            "output=\(scratch.appendingPathComponent("run").path)", "heal.steps=4", "heal.eval_every=0", "heal.eval_tokens=512",
            "analyze.samples=2", "layerskip.prompts=2", "layerskip.max_tokens=12", "threads=1",
        ])
        let study = try LayerSkipStudy(recipe: recipe, recipeFile: "Recipes/layerskip-kjv.yaml", log: .silent)
        let summary = try study.run()
        XCTAssertEqual(summary.models.map(\.label), ["base", "layerskip full", "layerskip lora", "baseline (cross-entropy, full)"])
        for m in summary.models {
            XCTAssertTrue(m.identical, "\(m.label): exit:auto must give plain greedy's output")
            XCTAssertEqual(m.exitAgreement.count, 5, m.label)
            XCTAssertEqual(m.exitAgreement.last ?? 0, 1, accuracy: 1e-12, "\(m.label): the last exit is the model")
            XCTAssertEqual(m.autoChoices.count, 2, m.label)
            XCTAssertTrue(m.perplexity.isFinite && m.plainTokensPerSecond > 0 && m.autoTokensPerSecond > 0, "\(m)")
        }
        XCTAssertNotEqual(summary.models[1].perplexity, summary.models[0].perplexity, "training changed the model")
        let out = study.output
        for f in ["summary.json", "report.md", "report.html", "exits.svg", "final/config.json", "final/model.safetensors",
                  "final/speculation.json", "layerskip/full/merged/config.json", "layerskip/lora/adapter/adapter_config.json",
                  "baseline/merged/config.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f)
        }
        let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(report.contains("| layerskip full |") && report.contains("## Exits"), report)
        // The exported model speculates with its stored profile (exit:auto without --calibration, the stored vocabulary).
        let r = try PruneExecutable.run(["generate", out.appendingPathComponent("final").path, "--prompt", "And God said",
                                         "--max-tokens", "16", "--speculate", "exit:auto", "--compare-plain"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("speculation.json"), r.stderr)
        XCTAssertTrue(r.stderr.contains("exit:auto: "), r.stderr)
        // A rerun does nothing again.
        let again = try LayerSkipStudy(recipe: recipe, recipeFile: "Recipes/layerskip-kjv.yaml", log: .silent)
        let second = try again.run()
        XCTAssertEqual(second.stagesRun, [], "\(second.stagesRun)")
        XCTAssertEqual(second.models.map(\.perplexity), summary.models.map(\.perplexity))
    }

    func testTheLayerSkipSectionsRefusals() throws {
        let base = "model: m\noutput: o\ndata: {train: t.jsonl, valid: v.jsonl}\n"
        func message(_ text: String) -> String {
            do { _ = try Recipe.parse(text, file: "ls.yaml"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message(base + "layerskip: {methods: [full]}\n"), "no error")
        for (text, words) in [
            ("layerskip: {methods: [ful]}\n", "\"ful\" is not full or lora"),
            ("layerskip: {methods: [full, full]}\n", "each once"),
            ("layerskip: {curriculum: rotate}\n", "\"rotate\" is not none, rotational:R or gradual"),
            ("layerskip: {layer_dropout: 1.5}\n", "layer_dropout: must be in [0, 1)"),
            ("layerskip: {prompts: 0}\n", "layerskip.prompts: must be at least 1"),
            ("layerskip: {draft_vocabulary: -1}\n", "draft_vocabulary: must be ≥ 0"),
            ("layerskip: {}\ncut: {count: 1}\n", "drop cut"),
            ("", "cut: is required (count and strategy, or layers), or layerskip"),
        ] {
            let m = message(base + text)
            XCTAssertTrue(m.contains(words) && !m.contains("\n"), "“\(m)” should say “\(words)”")
        }
        let noTrain = message("model: m\noutput: o\ndata: {valid: v.jsonl}\nheal: {enabled: false}\nlayerskip: {}\n")
        XCTAssertTrue(noTrain.contains("train: is required by layerskip"), noTrain)
    }
}
