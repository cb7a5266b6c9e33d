// The report `prune run` writes, from a small hand-made summary where every count is one: it reads right at
// one ("1 layer", never "1 layers"), report.html carries its own stylesheet and charts as wide as the column,
// continuations end at a whole word, and the early-exit chart numbers layers from 0 as the per-layer chart does.
import Analysis
import Foundation
@testable import Recipes
import Support
import TestSupport
import XCTest

final class RunReportTests: XCTestCase {
    func testCountedIsSingularAtOneOnly() {
        XCTAssertEqual(Counted.noun(1, "layer"), "1 layer")
        XCTAssertEqual(Counted.noun(0, "layer"), "0 layers")
        XCTAssertEqual(Counted.noun(30, "layer"), "30 layers")
        XCTAssertEqual(Counted.noun(1, "entry", plural: "entries"), "1 entry")
        XCTAssertEqual(Counted.noun(2, "entry", plural: "entries"), "2 entries")
    }

    func continuation(_ text: String, tokens: Int?) -> Continuation {
        Continuation(model: "m", text: text, tokens: tokens, tokensPerSecond: 1, drift: nil)
    }

    func testContinuationsEndAtAWholeWord() {
        XCTAssertEqual(RunReport.shown(continuation(" to another soul to behind the soulf", tokens: 24), maxTokens: 24),
                       "to another soul to behind the…", "the word the budget cut is dropped")
        XCTAssertEqual(RunReport.shown(continuation(", and their work. And ", tokens: 24), maxTokens: 24), ", and their work. And…",
                       "a word followed by a space was whole")
        XCTAssertEqual(RunReport.shown(continuation(" she said,", tokens: 24), maxTokens: 24), "she said,…")
        XCTAssertEqual(RunReport.shown(continuation(" Anifelyeion", tokens: 24), maxTokens: 24), "Anifelyeion…", "one word is kept")
        XCTAssertEqual(RunReport.shown(continuation(" The end.", tokens: 3), maxTokens: 24), "The end.",
                       "the model stopped itself: shown whole")
        XCTAssertEqual(RunReport.shown(continuation(" The en", tokens: nil), maxTokens: 24), "The…", "unknown count: taken as cut")
    }

    func testInlineChartsTakeTheColumnWidthAndKeepTheirProportions() {
        let svg = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"360\" height=\"248\" viewBox=\"0 0 360 248\">"
            + "<rect width=\"100%\" height=\"10\" stroke-width=\"2\"/></svg>\n"
        let inlined = RunReport.inline(svg)
        XCTAssertTrue(inlined.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 360 248\" width=\"100%\">"), inlined)
        XCTAssertTrue(inlined.contains("<rect width=\"100%\" height=\"10\" stroke-width=\"2\"/>"), "only the root changes")
        XCTAssertEqual(RunReport.naturalWidth(svg), 360)
    }

    /// A 3-layer model where everything counted is one: one sample, token, target, parameter, step, layer cut.
    func summary() throws -> (RunSummary, LayerAnalysis) {
        let L = 3
        let distances: [[Double?]] = [[nil, nil, nil, nil], [0.3, 0.1, 0.2, nil], [0.4, 0.35, nil, nil], [0.5, nil, nil, nil]]
        let analysis = LayerAnalysis(model: "m/tiny", dataset: "calib.jsonl", samples: 1, tokens: 1, lossTokens: 1, context: 8, layers: L,
                                     blockSizes: [1], fullLoss: 2, angularDistance: AngularDistanceMatrices(lastToken: distances, allTokens: distances),
                                     blockInfluence: [0.3, 0.1, 0.2], removalLoss: nil, earlyExitLoss: [4, 3, 2],
                                     earlyExitTop1Agreement: [0.2, 0.5, 1])
        var recipe = Recipe(model: "m/tiny", output: "out", data: .init(calibration: "calib.jsonl", train: "train.jsonl", valid: "valid.jsonl"))
        recipe.cut.count = 1
        recipe.cut.strategies = [.last, .bi]
        recipe.heal.steps = 1
        recipe.report.maxTokens = 4
        recipe.report.prompts = ["In the beginning"]
        let evaluation = ModelEvaluation(loss: 2, perplexity: exp(2), tokens: 1, meanKL: nil, top1Agreement: nil, layers: L, parameters: 1,
                                         bytesOnDisk: 4)
        let strategies = try recipe.cut.strategies.map { strategy in
            StrategyResult(choice: try LayerSelector.choose(strategy, count: 1, layerCount: L, analysis: analysis, lossScan: nil,
                                                            explicit: nil, allowFirstLayer: false),
                           cutDirectory: "cuts/\(strategy.rawValue)", cut: evaluation)
        }
        let full = " God created the heav"
        let stutter = ", And And Abrahhhhah, and And"
        let continuations = [[Continuation(model: "full", text: full, tokens: 4, tokensPerSecond: 1, drift: nil),
                              Continuation(model: "last cut", text: stutter, tokens: 4, tokensPerSecond: 1,
                                           drift: TextDrift.measure(stutter, original: full))]]
        return (RunSummary(recipe: recipe, recipeFile: "r.yaml", layers: L, count: 1, full: evaluation, strategies: strategies,
                           blockRemovalLoss: [3, 2.5, 2.8], calibrationFullLoss: 2, prompts: recipe.report.prompts,
                           continuations: continuations, finalModel: nil, stagesRun: ["analyze"], stagesSkipped: []), analysis)
    }

    /// report.md and report.html of `summary()`, written to a scratch directory and read back.
    func writtenReport() throws -> (md: String, html: String) {
        let scratch = try Fixtures.temporaryDirectory("run-report")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (s, analysis) = try summary()
        try RunReport.write(s, analysis: analysis, to: scratch)
        return (try String(contentsOf: scratch.appendingPathComponent("report.md"), encoding: .utf8),
                try String(contentsOf: scratch.appendingPathComponent("report.html"), encoding: .utf8))
    }

    func testTheReportReadsRightAtOne() throws {
        let (md, html) = try writtenReport()
        for text in [md, html] {
            XCTAssertNil(text.range(of: "\\b1 (layers|samples|tokens|targets|parameters|steps)\\b", options: .regularExpression),
                         "a plural after 1 in:\n\(text)")
            for phrase in ["3 layers, 1 parameter", "1 sample, 1 token", "1 target in windows of 256 tokens", "Cut: 1 layer by",
                           "1 step of", "the last layer before the final one: 1", "the layer with the lowest Block Influence: 1",
                           "up to 4 tokens"] {
                XCTAssertTrue(text.contains(phrase), "\(phrase) in:\n\(text)")
            }
            XCTAssertTrue(text.contains("God created the…"), "cut back to the last whole word")
            XCTAssertTrue(text.contains("⚠ repeated words, character run"), "the stutter is flagged")
        }
        XCTAssertTrue(md.contains("|:---|:---|---:|"), "numbers right-aligned in Markdown too")
    }

    func testTheHTMLIsStyledAndSelfContained() throws {
        let html = try writtenReport().html
        let head = try XCTUnwrap(html.components(separatedBy: "</head>").first)
        XCTAssertTrue(head.contains("<style>") && head.contains("max-width") && head.contains("system-ui"), head)
        for external in ["src=", "<link", "@import", "url(http"] { XCTAssertFalse(html.contains(external), external) }
        let roots = html.components(separatedBy: "<svg ").dropFirst().map { $0.prefix { $0 != ">" } }
        XCTAssertEqual(roots.count, 4, "heat map, block removal, early exit, per-layer; no healing run, no curves")
        for root in roots {
            XCTAssertTrue(root.contains("width=\"100%\"") && root.contains("viewBox="), String(root))
            XCTAssertFalse(root.contains("height="), String(root))
        }
        XCTAssertTrue(html.contains("<td class=\"num\">3</td>"), "numbers in cells of their own class")
        XCTAssertTrue(html.contains("<td class=\"text\">God created the…</td>"))
        XCTAssertTrue(html.contains("<td class=\"warn\">⚠ repeated words"))
    }

    func testTheEarlyExitChartNumbersLayersFromZero() throws {
        let scratch = try Fixtures.temporaryDirectory("run-report")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (s, analysis) = try summary()
        try RunReport.write(s, analysis: analysis, to: scratch)
        let svg = try String(contentsOf: scratch.appendingPathComponent("early-exit.svg"), encoding: .utf8)
        // earlyExitLoss[i] is layer i's output: points at 0…L-1, as in the per-layer chart.
        for (i, loss) in analysis.earlyExitLoss!.enumerated() {
            XCTAssertTrue(svg.contains("<title>exit after layer (0-based) \(i): \(String(format: "%.6g", loss))</title>"), svg)
        }
        XCTAssertFalse(svg.contains("(0-based) 3:"), "no exit numbered L")
        XCTAssertTrue(AnalysisFiles.layerProfile(analysis).contains("<title>layer 0: \(String(format: "%.6g", analysis.blockInfluence[0]))</title>"))
    }
}
