// Recipes as validated data (every file in Recipes/ decodes, and its header is the command that runs it), the
// one-line error of a bad recipe, and `prune run` end to end on stories260K: the quickstart with few steps, a
// rerun that skips every finished stage, and the strategy table's perplexities against EvaluationJob's.
import Foundation
import Pipeline
import TestSupport
import XCTest

final class RecipeTests: XCTestCase {
    static let recipes = Fixtures.projectRoot.appendingPathComponent("Recipes")

    func testEveryShippedRecipeDecodesValidatesAndStartsWithItsCommand() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.recipes.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(files, ["compare-strategies.yaml", "gromov-angular-lora.yaml", "quickstart.yaml", "reassessing-last-partial.yaml",
                               "shortgpt-bi.yaml"])
        for f in files {
            let url = Self.recipes.appendingPathComponent(f)
            let recipe = try Recipe.load(url, displayPath: "Recipes/\(f)")
            let first = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").first.map(String.init)
            XCTAssertEqual(first, "# prune run Recipes/\(f)", "\(f): the header is the command that runs it")
            XCTAssertFalse(recipe.cut.strategies.isEmpty, f)
            // The resolved form reads back as the same recipe.
            XCTAssertEqual(try Recipe.parse(recipe.resolvedYAML(), file: "resolved \(f)"), recipe, f)
        }
        let partial = try Recipe.load(Self.recipes.appendingPathComponent("reassessing-last-partial.yaml"))
        XCTAssertEqual(partial.cut.fraction, 0.25)
        XCTAssertEqual(partial.heal.method, .partial)
        XCTAssertEqual(partial.heal.trainLayers, "last:3")
        XCTAssertTrue(partial.heal.trainLMHead)
        let compare = try Recipe.load(Self.recipes.appendingPathComponent("compare-strategies.yaml"))
        XCTAssertEqual(compare.cut.strategies, [.angular, .bi, .last, .loss])
    }

    func testABadRecipeIsOneLineNamingTheFileLineAndKey() throws {
        let text = """
        model: m
        output: o
        data:
          valid: v.jsonl
        cut:
          count: 2
        heal:
          enabled: false
          stpes: 5
        """
        func message(_ text: String, overrides: [String] = []) -> String {
            do { _ = try Recipe.parse(text, file: "bad.yaml", overrides: overrides); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message(text), "bad.yaml:9: heal.stpes: unknown key (expected one of: enabled, method, all, steps, lr, warmup_steps, "
                       + "batch_size, grad_accum, context, rank, alpha, train_layers, train_lm_head, eval_every, eval_tokens, seed)")
        XCTAssertEqual(message(text.replacingOccurrences(of: "stpes: 5", with: "steps: many")), "bad.yaml:9: heal.steps: expected an integer, got \"many\"")
        XCTAssertEqual(message(text.replacingOccurrences(of: "count: 2", with: "count: [2]")), "bad.yaml:6: cut.count: expected an integer, got a list")
        XCTAssertEqual(message(text.replacingOccurrences(of: "  stpes: 5", with: ""), overrides: ["heal.steps=x"]),
                       "bad.yaml (override heal.steps=x): heal.steps: expected an integer, got \"x\"")
        XCTAssertEqual(message("model: m\n  output: [o\n"), "bad.yaml:2: not valid YAML (column 9): mapping values are not allowed in this context")
        XCTAssertFalse(message("model: m\noutput: o\ndata: {valid: v}\ncut: {strategy: angualr, count: 1}\nheal: {enabled: false}").contains("\n"))
        // Overrides reach nested keys and lists.
        let r = try Recipe.parse(text.replacingOccurrences(of: "  stpes: 5", with: ""), file: "ok.yaml",
                                 overrides: ["heal.steps=50", "cut.strategies=[bi, loss]", "evaluate.context=128"])
        XCTAssertEqual(r.heal.steps, 50)
        XCTAssertEqual(r.cut.strategies, [.bi, .loss])
        XCTAssertEqual(r.evaluate.context, 128)
    }

    func testRelativePathsStartInTheRecipesDirectoryAndOverridesInTheWorkingDirectory() throws {
        let text = "model: ../models/m\noutput: out\ndata: {valid: v.jsonl, train: /data/t.jsonl}\ncut: {count: 1}\nheal: {enabled: false}\n"
        let dir = URL(fileURLWithPath: "/studies/kjv")
        let cwd = FileManager.default.currentDirectoryPath
        let r = try Recipe.parse(text, file: "r.yaml", directory: dir)
        XCTAssertEqual([r.model, r.output, r.data.valid, r.data.calibration, r.data.train],
                       ["/studies/models/m", "/studies/kjv/out", "/studies/kjv/v.jsonl", "/studies/kjv/v.jsonl", "/data/t.jsonl"],
                       "calibration defaults to valid")
        let o = try Recipe.parse(text, file: "r.yaml", overrides: ["output=runs/a", "data={valid: w.jsonl}", "data.calibration=c.jsonl", "model=~/m"],
                                 directory: dir)
        XCTAssertEqual([o.model, o.output, o.data.valid, o.data.calibration],
                       [NSHomeDirectory() + "/m", cwd + "/runs/a", cwd + "/w.jsonl", cwd + "/c.jsonl"])
        let shipped = try Recipe.load(Self.recipes.appendingPathComponent("quickstart.yaml"))
        XCTAssertEqual(shipped.model, Fixtures.stories260K.standardizedFileURL.path)
        XCTAssertEqual(shipped.data.valid, Fixtures.kjvValid.standardizedFileURL.path)
        XCTAssertEqual(shipped.output, Fixtures.projectRoot.appendingPathComponent("out/quickstart").standardizedFileURL.path)
    }

    /// The quickstart with few steps on a slice of the held-out data.
    func quickstart(_ scratch: URL, _ extra: [String] = []) throws -> (Recipe, RecipeRunner) {
        let valid = scratch.appendingPathComponent("valid.jsonl")
        if !FileManager.default.fileExists(atPath: valid.path) {
            let lines = try String(contentsOf: Fixtures.kjvValid, encoding: .utf8).split(separator: "\n").prefix(2)
            try (lines.joined(separator: "\n") + "\n").write(to: valid, atomically: true, encoding: .utf8)
        }
        let recipe = try Recipe.load(Self.recipes.appendingPathComponent("quickstart.yaml"), overrides: [
            "output=\(scratch.appendingPathComponent("run").path)", "data.valid=\(valid.path)", "analyze.samples=4",
            "heal.steps=12", "heal.eval_every=0", "heal.eval_tokens=512", "report.max_tokens=6", "report.prompts=[In the beginning]",
            "cut.strategies=[angular, last, loss]", "threads=1",
        ] + extra)
        let runner = RecipeRunner(recipe: recipe, recipeFile: "Recipes/quickstart.yaml", log: .silent)
        runner.progress = false
        return (recipe, runner)
    }

    func testQuickstartRunsEndToEndThenARerunSkipsEveryFinishedStage() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (recipe, runner) = try quickstart(scratch)
        let first = try runner.run()
        let out = runner.output
        for f in ["recipe.yaml", "analysis/analysis.json", "analysis/analysis.svg", "selection.json", "cuts/angular/config.json",
                  "cuts/last/prune_cut.json", "heal/angular/metrics.jsonl", "heal/angular/merged/config.json", "final/config.json",
                  "heatmap.svg", "heal-loss.svg", "block-removal.svg", "report.md", "report.html", "summary.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f)
        }
        XCTAssertEqual(first.strategies.map(\.choice.strategy), [.angular, .last, .loss])
        XCTAssertEqual(first.strategies[1].choice.dropped, [3], "last: the layer before the final one")
        XCTAssertFalse(first.strategies.contains { $0.choice.dropped.contains(0) }, "layer 0 is never chosen unless allowed")
        XCTAssertEqual(first.blockRemovalLoss?.count, 5)
        for s in first.strategies {
            XCTAssertEqual(s.cut.layers, 4)
            XCTAssertGreaterThan(s.cut.meanKL ?? 0, 0)
            XCTAssertLessThan(s.healed!.perplexity, s.cut.perplexity, "healing lowers the held-out perplexity of the \(s.choice.strategy) cut")
        }
        XCTAssertEqual(first.stagesSkipped, [])
        XCTAssertEqual(first.continuations.count, 1)
        XCTAssertEqual(first.continuations[0].map(\.model), ["full", "angular cut", "angular healed", "last cut", "last healed", "loss cut", "loss healed"])
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<svg"), "charts inline")
        XCTAssertFalse(html.contains("src=\""), "self-contained")
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("![angular distance with the chosen cut](heatmap.svg)"))

        // The same recipe again: every stage is skipped and the results are the same.
        let second = try runner.run()
        XCTAssertEqual(second.stagesRun, [])
        XCTAssertEqual(second.stagesSkipped, first.stagesRun)
        XCTAssertEqual(second.strategies, first.strategies)
        _ = recipe

        // A change to the healing reruns healing and what depends on it, nothing upstream.
        let (_, changed) = try quickstart(scratch, ["heal.steps=13"])
        let third = try changed.run()
        var distinct: [[Int]: String] = [:]
        for s in first.strategies where distinct[s.choice.dropped] == nil { distinct[s.choice.dropped] = s.choice.strategy.rawValue }
        XCTAssertEqual(Set(third.stagesRun), Set(distinct.values.flatMap { ["heal-\($0)", "evaluate-\($0)-healed"] } + ["generate", "export"]))
    }

    func testTheStrategyTablesPerplexitiesAreEvaluationJobsOnTheSameCuts() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (recipe, runner) = try quickstart(scratch, ["heal.enabled=false", "cut.strategies=[bi, layers]", "cut.layers=1-2",
                                                        "cut.count=1", "report.prompts=[]", "export.enabled=false"])
        let summary = try runner.run()
        XCTAssertEqual(summary.strategies.map(\.choice.dropped), [summary.strategies[0].choice.dropped, [1, 2]])
        let options = EvaluationOptions(dataset: URL(fileURLWithPath: recipe.data.valid), context: recipe.evaluate.context)
        let full = try EvaluationJob.run(ModelSource(path: Fixtures.stories260K.path, parallelism: .init(threads: 1)), options: options,
                                         progress: false, log: .silent)
        XCTAssertEqual(summary.full.perplexity, full.perplexity)
        XCTAssertEqual(summary.full.tokens, full.tokens)
        for s in summary.strategies {
            let cut = runner.output.appendingPathComponent(s.cutDirectory)
            let direct = try EvaluationJob.run(ModelSource(path: cut.path, parallelism: .init(threads: 1)), options: options,
                                               progress: false, log: .silent)
            XCTAssertEqual(s.cut.perplexity, direct.perplexity, "\(s.choice.strategy)")
            XCTAssertEqual(s.cut.loss, direct.loss)
        }
    }
}
