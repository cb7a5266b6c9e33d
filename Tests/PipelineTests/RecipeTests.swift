// Recipes as validated data (every file in Recipes/ decodes, and its header is the command that runs it), the
// one-line error of a bad recipe, and `prune run` end to end on stories260K: the quickstart with few steps (its stage
// counter ending at its total), a rerun that skips every finished stage, and the strategy table's perplexities against
// EvaluationJob's.
import Checkpoint
import Foundation
import Jobs
import Recipes
import Support
import Surgery
import TestSupport
import XCTest

final class RecipeTests: XCTestCase {
    static let recipes = Fixtures.projectRoot.appendingPathComponent("Recipes")

    func testEveryShippedRecipeDecodesValidatesAndStartsWithItsCommand() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.recipes.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(files, ["compare-strategies.yaml", "gromov-angular-lora.yaml", "layerskip-kjv.yaml", "quickstart.yaml",
                               "reassessing-last-partial.yaml", "shortgpt-bi.yaml"])
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
        let layerskip = try XCTUnwrap(try Recipe.load(Self.recipes.appendingPathComponent("layerskip-kjv.yaml")).layerskip)
        XCTAssertEqual(layerskip.methods, [.full, .lora])
        XCTAssertEqual(layerskip.curriculum, "rotational:8")
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
                       + "batch_size, grad_accum, context, rank, alpha, train_layers, train_lm_head, eval_every, eval_tokens, seed, "
                       + "teacher, distill_weight, distill_temperature, distill_hidden)")
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

    /// The "[i/N] stage" counters a run prints, in order.
    final class StageCounters {
        var seen: [(index: Int, total: Int)] = []
        var log: JobLog {
            JobLog(warning: { _ in }, note: { line in
                guard line.hasPrefix("["), let close = line.firstIndex(of: "]") else { return }
                let numbers = line[line.index(after: line.startIndex)..<close].split(separator: "/").compactMap { Int($0) }
                if numbers.count == 2 { self.seen.append((numbers[0], numbers[1])) }
            })
        }

        /// The counter ends at its total, which every line states, and never goes back.
        func assertEndAtTheirTotal(file: StaticString = #filePath, line: UInt = #line) {
            guard let last = seen.last else { return XCTFail("no stage announced", file: file, line: line) }
            XCTAssertEqual(last.index, last.total, "the last stage is [N/N]: \(seen)", file: file, line: line)
            XCTAssertEqual(Set(seen.map(\.total)), [last.total], file: file, line: line)
            XCTAssertEqual(seen.map(\.index), seen.map(\.index).sorted(), file: file, line: line)
        }
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
    func quickstart(_ scratch: URL, _ extra: [String] = [], log: JobLog = .silent) throws -> (Recipe, RecipeRunner) {
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
        let runner = RecipeRunner(recipe: recipe, recipeFile: "Recipes/quickstart.yaml", log: log)
        return (recipe, runner)
    }

    func testQuickstartRunsEndToEndThenARerunSkipsEveryFinishedStage() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let counters = StageCounters()
        let (recipe, runner) = try quickstart(scratch, log: counters.log)
        let first = try runner.run()
        counters.assertEndAtTheirTotal()
        XCTAssertEqual(counters.seen.last?.total, 5 + 1 + 3 * 4, "analyze, choose, evaluate, generate, report, export; 3 strategies healed")
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
        XCTAssertTrue(html.contains("<style>"), "styled")
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("![angular distance with the chosen cut](heatmap.svg)"))
        for text in [md, html] {
            XCTAssertNil(text.range(of: "\\b1 (layers|tokens|samples|steps|targets)\\b", options: .regularExpression), "a plural after 1")
            XCTAssertTrue(text.contains("The healing chart's held-out loss is finetune's own evaluation"), "the note on the two held-out losses")
        }

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
        let counters = StageCounters()
        let task = Fixtures.file("tasks/handwritten.jsonl")
        let (recipe, runner) = try quickstart(scratch, ["heal.enabled=false", "cut.strategies=[bi, layers]", "cut.layers=1-2",
                                                        "cut.count=1", "report.prompts=[]", "export.enabled=false",
                                                        "evaluate.task=\(task.path)"], log: counters.log)
        let summary = try runner.run()
        counters.assertEndAtTheirTotal()
        XCTAssertEqual(counters.seen.last?.total, 5 + 2 * 2, "no healing, no export: cut and evaluate per strategy")
        XCTAssertEqual(summary.strategies.map(\.choice.dropped), [summary.strategies[0].choice.dropped, [1, 2]])
        let options = EvaluationOptions(dataset: URL(fileURLWithPath: recipe.data.valid), context: recipe.evaluate.context)
        let full = try EvaluationJob.run(ModelSource(path: Fixtures.stories260K.path, parallelism: .init(threads: 1)), options: options, log: .silent)
        XCTAssertEqual(summary.full.perplexity, full.perplexity)
        XCTAssertEqual(summary.full.tokens, full.tokens)
        for s in summary.strategies {
            let cut = runner.output.appendingPathComponent(s.cutDirectory)
            let direct = try EvaluationJob.run(ModelSource(path: cut.path, parallelism: .init(threads: 1)), options: options, log: .silent)
            XCTAssertEqual(s.cut.perplexity, direct.perplexity, "\(s.choice.strategy)")
            XCTAssertEqual(s.cut.loss, direct.loss)
            // evaluate.task: the scores `prune eval --task` gives the same cut.
            let scores = try TaskScoringJob.run(ModelSource(path: cut.path, parallelism: .init(threads: 1)), options: TaskScoringOptions(task: task), log: .silent)
            XCTAssertEqual(s.cut.task?.accNorm, scores.accNorm)
            XCTAssertEqual(s.cut.task?.acc, scores.acc)
            XCTAssertEqual(s.cut.task?.n, 20)
        }
        XCTAssertNotNil(summary.full.task)
        let md = try String(contentsOf: runner.output.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("task acc_norm"), "the table has the task's column")
    }

    /// cut.replace repairs each cut as `prune cut --replace` does (same weights), is part of the cut's stage key, and
    /// the report says so.
    func testCutReplaceRepairsTheCutsAsTheCutCommandDoes() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let settings = ["heal.enabled=false", "cut.strategies=[layers]", "cut.layers=2-3", "report.prompts=[]", "export.enabled=false"]
        let (recipe, runner) = try quickstart(scratch, settings + ["cut.replace=replaceme"])
        let summary = try runner.run()
        let cut = runner.output.appendingPathComponent(summary.strategies[0].cutDirectory)
        let origin = try JSONDecoder().decode(CutOrigin.self, from: Data(contentsOf: cut.appendingPathComponent(CutOrigin.fileName)))
        XCTAssertEqual(origin.repair, "replaceme")
        let direct = scratch.appendingPathComponent("direct")
        let calibration = AnalyzeOptions(dataset: URL(fileURLWithPath: recipe.data.calibration), samples: recipe.analyze.samples,
                                         context: recipe.analyze.context, batchSize: recipe.analyze.batchSize)
        _ = try CutJob.run(ModelSource(path: Fixtures.stories260K.path, parallelism: .init(threads: 1)),
                           options: CutOptions(method: .layers("2-3"), output: direct, replace: .replaceme(calibration)), quiet: true, log: .silent)
        let name = WeightNames.projection(.down, layer: 1)
        XCTAssertEqual(try CheckpointTensors(directory: cut).tensor(name).data[7], try CheckpointTensors(directory: direct).tensor(name).data[7])
        let md = try String(contentsOf: runner.output.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("ReplaceMe's linear map"), "the report says how the cut was repaired")

        let (_, laco) = try quickstart(scratch, settings + ["cut.replace=laco"])
        XCTAssertTrue(try laco.run().stagesRun.contains("cut-layers"), "another repair is another cut")
        XCTAssertThrowsError(try quickstart(scratch, settings + ["cut.replace=merge"])) { error in
            XCTAssertTrue("\(error)".contains("cut.replace"), "\(error)")
        }
    }

    /// A cut no strategy can make (every layer of the 5-layer default, or all but one) is one line naming cut.count
    /// before any stage runs; a `layers` cut of layer 0 needs cut.force.
    func testAnImpossibleOrDamagingCutIsRefusedBeforeAnyStage() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        for count in ["5", "9", "4"] {
            let (_, runner) = try quickstart(scratch, ["cut.count=\(count)"])
            XCTAssertThrowsError(try runner.run(), count) { error in
                XCTAssertEqual((error as? PruneError)?.subject, "cut.count", "\(error)")
                XCTAssertFalse("\(error)".contains("\n"))
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: runner.output.appendingPathComponent("analysis").path), "no stage ran")
        }
        let (_, layers) = try quickstart(scratch, ["cut.strategies=[layers]", "cut.layers=0-1"])
        XCTAssertThrowsError(try layers.run()) { error in
            XCTAssertTrue("\(error)".contains("layer 0") && "\(error)".contains("cut.force"), "\(error)")
        }
    }

    /// Random overrides (keys of every section, edge values of every type) on the quickstart recipe: each set parses
    /// and passes the runner's preflight or is refused with one line — none reaches a trap. 600 sets, the same every run.
    func testRandomOverridesAreAcceptedOrRefusedInOneLine() throws {
        let keys = ["model", "output", "threads", "data.calibration", "data.train", "data.valid", "analyze.samples", "analyze.context",
                    "analyze.batch_size", "analyze.early_exit", "cut.count", "cut.fraction", "cut.strategy", "cut.strategies", "cut.layers",
                    "cut.allow_first_layer", "cut.force", "cut.dtype", "evaluate.context", "evaluate.stride", "evaluate.batch_size",
                    "evaluate.reference", "heal.enabled", "heal.method", "heal.all", "heal.steps", "heal.lr", "heal.warmup_steps",
                    "heal.batch_size", "heal.grad_accum", "heal.context", "heal.rank", "heal.alpha", "heal.train_layers",
                    "heal.train_lm_head", "heal.eval_every", "heal.eval_tokens", "heal.seed", "heal.teacher", "heal.distill_weight",
                    "heal.distill_temperature", "heal.distill_hidden", "export.enabled", "export.dtype",
                    "report.prompts", "report.max_tokens", "cut", "heal", "nope", "cut.nope", "cut..count", ".x", "heal.steps.deeper"]
        let values = ["0", "1", "2", "3", "4", "5", "9", "-1", "-9223372036854775808", "9223372036854775807", "99999999999999999999",
                      "0.5", "1.5", "-0.25", "1e309", ".nan", ".inf", "true", "false", "~", "", "[]", "{}", "[1, 2]", "[angular, last]",
                      "[layers]", "[angular, angular]", "angular", "bi", "loss", "layers", "lora", "partial", "0-1", "1-2", "3,,5", "2,2",
                      "4-2", "last:0", "last:2", "last:99", "f32", "bf16", "float32", "int8", "\"quoted\"", "[In the beginning]",
                      "{a: 1}", "'", "[", "*anchor", "!!binary AA==", "Checkpoints/stories260K", "/nonexistent", "-", "1-", "original"]
        var rng = SeededGenerator(seed: 2026)
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let text = try String(contentsOf: Self.recipes.appendingPathComponent("quickstart.yaml"), encoding: .utf8)
        var accepted = 0
        for _ in 0..<600 {
            var overrides = ["output=\(scratch.path)/run"]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let key = keys.randomElement(using: &rng)!, value = values.randomElement(using: &rng)!
                overrides.append(Int.random(in: 0..<20, using: &rng) == 0 ? value : "\(key)=\(value)")
            }
            do {
                let recipe = try Recipe.parse(text, file: "quickstart.yaml", overrides: overrides, directory: Self.recipes)
                _ = try RecipeRunner(recipe: recipe, recipeFile: "Recipes/quickstart.yaml", log: .silent).preflight()
                accepted += 1
            } catch let error as PruneError {
                XCTAssertFalse(error.description.contains("\n"), "one line for \(overrides): \(error.description)")
            } catch {
                XCTFail("\(overrides): not a one-line refusal: \(error)")
            }
        }
        XCTAssertGreaterThan(accepted, 10, "some sets are valid")
    }
}
