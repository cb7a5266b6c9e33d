// Recipes read through RecipeDecoder: every shipped recipe decodes to the values its file writes (the rest the
// types' defaults), and a bad key or value is one line with its file and line, or the override it came from.
import Foundation
@testable import Recipes
import TestSupport
import XCTest

final class RecipeDecodingTests: XCTestCase {
    /// The error line of parsing `text` (as bad.yaml) with `overrides`, or "no error".
    func message(_ text: String, overrides: [String] = []) -> String {
        do { _ = try Recipe.parse(text, file: "bad.yaml", overrides: overrides); return "no error" } catch { return "\(error)" }
    }

    let base = "model: m\noutput: o\ndata:\n  valid: v.jsonl\n  train: t.jsonl\ncut:\n  count: 2\n  strategy: bi\n"

    /// A shipped recipe as its file writes it: the data files of Recipes/data, relative paths from Recipes/.
    func shipped(_ name: String, model: String = "../Checkpoints/stories260K", train: Bool = true,
                 _ written: (inout Recipe) -> Void) -> (String, Recipe) {
        func path(_ relative: String) -> String { RecipeTests.recipes.appendingPathComponent(relative).standardizedFileURL.path }
        var r = Recipe(model: model.hasPrefix("~") ? NSHomeDirectory() + model.dropFirst() : path(model), output: path("../out/\(name)"),
                       data: .init(calibration: path("data/kjv-train.jsonl"), train: train ? path("data/kjv-train.jsonl") : nil,
                                   valid: path("data/kjv-valid.jsonl")))
        written(&r)
        return ("\(name).yaml", r)
    }

    func testEveryShippedRecipeDecodesToTheValuesItsFileWrites() throws {
        let expected = [
            shipped("compare-strategies", model: "~/.cache/prune-dev/smollm2-135m") {
                ($0.analyze.samples, $0.analyze.context, $0.analyze.batchSize) = (32, 256, 4)
                ($0.cut.count, $0.cut.strategies) = (8, [.angular, .bi, .last, .loss])
                ($0.evaluate.context, $0.evaluate.reference) = (256, true)
                $0.evaluate.task = RecipeTests.recipes.appendingPathComponent("data/kjv-endings.jsonl").standardizedFileURL.path
                ($0.heal.enabled, $0.heal.method, $0.heal.steps, $0.heal.lr, $0.heal.batchSize, $0.heal.context) = (false, .lora, 100, 2e-4, 4, 256)
                $0.export.enabled = false
                ($0.report.prompts, $0.report.maxTokens) = (["In the beginning God created", "The capital of France is"], 24)
            },
            shipped("gromov-angular-lora") {
                ($0.analyze.samples, $0.analyze.context) = (64, 256)
                ($0.cut.count, $0.cut.strategies) = (2, [.angular])
                $0.evaluate.context = 256
                ($0.heal.method, $0.heal.rank, $0.heal.alpha, $0.heal.steps, $0.heal.lr) = (.lora, 8, 16, 200, 2e-4)
                ($0.heal.warmupSteps, $0.heal.batchSize, $0.heal.context, $0.heal.evalEvery) = (20, 4, 256, 50)
                $0.report.prompts = ["In the beginning"]
            },
            shipped("layerskip-kjv") {
                $0.threads = 2
                ($0.analyze.samples, $0.analyze.context) = (16, 256)
                ($0.evaluate.context, $0.evaluate.reference) = (256, false)
                ($0.heal.steps, $0.heal.lr, $0.heal.warmupSteps, $0.heal.batchSize, $0.heal.context) = (200, 1e-4, 20, 4, 256)
                ($0.heal.rank, $0.heal.alpha, $0.heal.evalEvery, $0.heal.evalTokens) = (16, 32, 100, 16384)
                var l = Recipe.LayerSkipSettings()
                (l.methods, l.loraLR, l.earlyExitScale, l.curriculum, l.layerDropout) = ([.full, .lora], 1e-3, 1, "rotational:8", 0.1)
                (l.baseline, l.prompts, l.promptTokens, l.maxTokens, l.draftVocabulary) = (true, 8, 32, 128, 4096)
                $0.layerskip = l
            },
            shipped("quickstart") {
                $0.threads = 2
                ($0.analyze.samples, $0.analyze.context, $0.analyze.earlyExit) = (16, 64, true)
                ($0.cut.count, $0.cut.strategies) = (1, [.angular, .bi, .last, .loss])
                $0.evaluate.context = 256
                ($0.heal.method, $0.heal.rank, $0.heal.alpha, $0.heal.steps, $0.heal.lr, $0.heal.warmupSteps) = (.lora, 8, 16, 40, 3e-3, 4)
                ($0.heal.batchSize, $0.heal.context, $0.heal.evalEvery, $0.heal.evalTokens) = (4, 64, 10, 4096)
                ($0.export.enabled, $0.report.prompts, $0.report.maxTokens) = (true, ["In the beginning", "And the LORD said unto Moses,"], 24)
            },
            shipped("reassessing-last-partial") {
                ($0.analyze.samples, $0.analyze.context) = (32, 256)
                ($0.cut.fraction, $0.cut.strategies) = (0.25, [.last])
                $0.evaluate.context = 256
                ($0.heal.method, $0.heal.trainLayers, $0.heal.trainLMHead) = (.partial, "last:3", true)
                ($0.heal.steps, $0.heal.lr, $0.heal.warmupSteps, $0.heal.batchSize, $0.heal.context, $0.heal.evalEvery) = (200, 1e-4, 20, 4, 256, 50)
                $0.report.prompts = ["In the beginning"]
            },
            shipped("shortgpt-bi", train: false) {
                ($0.analyze.samples, $0.analyze.context) = (64, 256)
                ($0.cut.count, $0.cut.strategies) = (2, [.bi])
                $0.evaluate.context = 256
                $0.heal.enabled = false
                $0.report.prompts = ["In the beginning"]
            },
        ]
        let files = try FileManager.default.contentsOfDirectory(atPath: RecipeTests.recipes.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(files, expected.map(\.0), "every shipped recipe has its expected values here")
        for (file, recipe) in expected {
            let decoded = try Recipe.load(RecipeTests.recipes.appendingPathComponent(file))
            XCTAssertTrue(decoded == recipe, "\(file): \(differences(decoded, recipe).joined(separator: "; "))")
        }
    }

    /// The fields (dotted) where two values differ, each as "field: a ≠ b".
    func differences(_ a: Any, _ b: Any, at path: String = "") -> [String] {
        let (mirrorA, mirrorB) = (Mirror(reflecting: a), Mirror(reflecting: b))
        guard mirrorA.displayStyle == .struct else { return "\(a)" == "\(b)" ? [] : ["\(path): \(a) ≠ \(b)"] }
        return zip(mirrorA.children, mirrorB.children).flatMap { differences($0.value, $1.value, at: (path.isEmpty ? "" : path + ".") + ($0.label ?? "?")) }
    }

    func testAnUnknownKeyIsRefusedAtItsLineListingTheKeysItsTypeKnows() {
        XCTAssertEqual(message(base.replacingOccurrences(of: "  strategy: bi", with: "  stratgey: bi")),
                       "bad.yaml:8: cut.stratgey: unknown key (expected one of: count, fraction, strategy, strategies, layers, "
                       + "allow_first_layer, force, dtype, replace)")
        XCTAssertEqual(message(base.replacingOccurrences(of: "  train: t.jsonl", with: "  trian: t.jsonl")),
                       "bad.yaml:5: data.trian: unknown key (expected one of: calibration, train, valid)")
        XCTAssertEqual(message(base + "notes: x\n"), "bad.yaml:9: notes: unknown key (expected one of: model, output, threads, compute, data, "
                       + "analyze, cut, evaluate, heal, export, report, layerskip)")
        // A key written as null is still a key its type must know; known, it is absent (the default).
        XCTAssertTrue(message(base + "heal:\n  stpes: ~\n").hasPrefix("bad.yaml:10: heal.stpes: unknown key"))
        XCTAssertEqual(try Recipe.parse(base + "heal:\n  steps: ~\n", file: "ok.yaml").heal.steps, 100)
    }

    /// heal.teacher: original is the recipe's model (a path is taken from the recipe's directory); the distillation
    /// keys reach the healing's FinetuneOptions and the heal stage key, and are refused at their line without a teacher.
    func testAHealTeacherReachesTheFinetuneOptions() throws {
        let recipe = try Recipe.parse(base + "heal:\n  teacher: original\n  distill_weight: 0.3\n", file: "ok.yaml",
                                      directory: URL(fileURLWithPath: "/recipes"))
        let o = try RecipeRunner(recipe: recipe, recipeFile: "ok.yaml", log: .silent)
            .finetuneOptions(model: URL(fileURLWithPath: "/run/cuts/bi"), layers: 3, train: URL(fileURLWithPath: "/t.jsonl"),
                             output: URL(fileURLWithPath: "/run/heal/bi"))
        XCTAssertEqual(o.model, "/run/cuts/bi")
        XCTAssertEqual(o.teacher, "/recipes/m", "original: the recipe's own model")
        XCTAssertEqual(o.distillWeight, 0.3)
        XCTAssertNil(o.distillTemperature, "not written: finetune's default, filled in by the run")
        let plain = try Recipe.parse(base, file: "ok.yaml", directory: URL(fileURLWithPath: "/recipes"))
        XCTAssertNotEqual(ContentHash.settings(recipe.heal), ContentHash.settings(plain.heal), "part of the heal stage key")
        let path = try Recipe.parse(base + "heal:\n  teacher: ../orig\n", file: "ok.yaml", directory: URL(fileURLWithPath: "/recipes/x"))
        XCTAssertEqual(path.healTeacher, "/recipes/orig")

        XCTAssertEqual(message(base + "heal:\n  distill_weight: 0.3\n"), "bad.yaml:10: heal.distill_weight: needs a teacher (the model to distil from)")
        XCTAssertEqual(message(base + "heal:\n  teacher: original\n  distill_temperature: 0\n"),
                       "bad.yaml:11: heal.distill_temperature: must be positive, got 0.0")
        XCTAssertTrue(message(base + "heal:\n  teacher: o/sub\n").hasPrefix("bad.yaml:10: heal.teacher: "), "the run directory is written")
        XCTAssertTrue(message(base + "heal:\n  teacher: o/sub\n").hasSuffix("/o/sub is inside the output directory \(FileManager.default.currentDirectoryPath)/o, which the run writes; give the original model"))
    }

    func testAWrongTypeIsRefusedAtItsLine() {
        for (written, refusal) in [
            ("analyze:\n  early_exit: \"true\"\n", "bad.yaml:10: analyze.early_exit: expected true or false, got \"true\""),
            ("analyze:\n  samples: 1.5\n", "bad.yaml:10: analyze.samples: expected an integer, got \"1.5\""),
            ("heal:\n  lr: \"2e-4\"\n", "bad.yaml:10: heal.lr: expected a number, got \"2e-4\""),
            ("heal:\n  method: [lora]\n", "bad.yaml:10: heal.method: expected lora or partial, got a list"),
            ("heal: 5\n", "bad.yaml:9: heal: expected a mapping, got \"5\""),
            ("report:\n  prompts:\n    - In the beginning\n    - {a: 1}\n", "bad.yaml:12: report.prompts: expected a string, got a mapping"),
            ("evaluate:\n  context: 64\n  context: 32\n", "bad.yaml:11: evaluate.context: given twice"),
            ("heal:\n  seed: -1\n", "bad.yaml:10: heal.seed: must be ≥ 0, got -1"),
            ("heal:\n  steps: 0\n", "bad.yaml:10: heal.steps: must be at least 1, got 0"),
        ] {
            XCTAssertEqual(message(base + written), refusal)
        }
        XCTAssertEqual(message(base.replacingOccurrences(of: "strategy: bi", with: "strategies: [bi, lost]")),
                       "bad.yaml:8: cut.strategies: \"lost\" is not one of angular, bi, last, loss, layers")
        XCTAssertEqual(message("model: m\noutput: o\ncut: {count: 1}\n"), "bad.yaml:1: data: is required")
    }

    func testAnOverridesErrorNamesTheOverride() {
        XCTAssertEqual(message(base, overrides: ["heal.lr=fast"]), "bad.yaml (override heal.lr=fast): heal.lr: expected a number, got \"fast\"")
        XCTAssertTrue(message(base, overrides: ["cut.stratgey=bi"]).hasPrefix("bad.yaml (override cut.stratgey=bi): cut.stratgey: unknown key"))
        XCTAssertEqual(message(base, overrides: ["heal.steps=0"]), "bad.yaml (override heal.steps=0): heal.steps: must be at least 1, got 0")
        // The override that last set the value is named.
        XCTAssertEqual(message(base, overrides: ["cut={count: 1}", "cut.count=x"]),
                       "bad.yaml (override cut.count=x): cut.count: expected an integer, got \"x\"")
        XCTAssertEqual(message(base, overrides: ["cut.count=x", "cut={count: y}"]),
                       "bad.yaml (override cut={count: y}): cut.count: expected an integer, got \"y\"")
    }
}
