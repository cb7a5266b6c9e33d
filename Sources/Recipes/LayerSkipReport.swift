// The layerskip study's report: OUT/summary.json (LayerSkipSummary), report.md and report.html with the same
// tables — per model the last layer's held-out perplexity, plain and exit:auto decoding speed, what exit:auto
// chose, acceptance and whether the output equals plain greedy; per exit each model's top-1 agreement and loss —
// and the agreement curves as one chart (exits.svg).
import Foundation
import Jobs
import Reports
import Support

enum LayerSkipReport {
    static func write(_ s: LayerSkipSummary, to directory: URL) throws {
        try AtomicFile.write(try JSONEncoder.sorted.encode(s), to: directory.appendingPathComponent("summary.json"))
        let chart = exitChart(s)
        try AtomicFile.write(Data(chart.utf8), to: directory.appendingPathComponent("exits.svg"))
        try AtomicFile.write(Data(markdown(s).utf8), to: directory.appendingPathComponent("report.md"))
        try AtomicFile.write(Data(html(s, chart: chart).utf8), to: directory.appendingPathComponent("report.html"))
    }

    static func exitChart(_ s: LayerSkipSummary) -> String {
        LayerProfileSVG.render(
            title: "Top-1 agreement of each exit with the model's last layer (held-out data)",
            panels: s.models.map { LayerProfileSVG.Panel(title: $0.label, values: $0.exitAgreement, reference: nil, marksLowest: false) },
            layerAxis: "exit after layer (0-based)")
    }

    /// The models table.
    static func modelTable(_ s: LayerSkipSummary) -> (header: [String], rows: [[String]]) {
        let baseline = s.models.first { $0.label.hasPrefix("baseline") }
        let header = ["model", "held-out perplexity", "vs baseline", "plain tokens/s", "exit:auto tokens/s", "speed-up",
                      "exit:auto chose", "acceptance", "output", "training"]
        let rows = s.models.map { m -> [String] in
            [m.label, String(format: "%.2f", m.perplexity),
             baseline.map { String(format: "%+.1f%%", 100 * (m.perplexity / $0.perplexity - 1)) } ?? "–",
             String(format: "%.1f", m.plainTokensPerSecond), String(format: "%.1f", m.autoTokensPerSecond), String(format: "%.2f×", m.speedup),
             LayerSkipStudy.choiceSummary(m.autoChoices), String(format: "%.2f", m.acceptance),
             m.identical ? "= plain greedy" : "DIFFERS", m.trainingSeconds.map { String(format: "%.1f min", $0 / 60) } ?? "–"]
        }
        return (header, rows)
    }

    /// The exits table: one row per exit, "agreement (loss)" per model.
    static func exitTable(_ s: LayerSkipSummary) -> (header: [String], rows: [[String]]) {
        let header = ["exit after layer"] + s.models.map { "\($0.label): top-1 (loss)" }
        let rows = (0..<s.layers).map { l in
            ["\(l)"] + s.models.map { m in
                l < m.exitAgreement.count && l < m.exitLoss.count ? String(format: "%.3f (%.2f)", m.exitAgreement[l], m.exitLoss[l]) : "–"
            }
        }
        return (header, rows)
    }

    static func intro(_ s: LayerSkipSummary) -> [String] {
        let r = s.recipe, l = r.layerskip ?? Recipe.LayerSkipSettings()
        return [
            "Recipe `\(s.recipeFile)`; model `\(r.model)` (\(s.layers) layers); train `\(r.data.train ?? "")`, held-out `\(r.data.valid)`.",
            "Training: \(l.methods.map(\.rawValue).joined(separator: " and ")) with the early-exit loss (scale \(l.earlyExitScale), curriculum \(l.curriculum)) and layer dropout \(l.layerDropout); \(r.heal.steps) steps of \(r.heal.batchSize) × \(r.heal.context) tokens, lr \(r.heal.lr) (lora \(l.loraLR))"
                + (l.baseline ? "; the baseline is plain cross-entropy with the first method's budget." : "."),
            "Speed: the first \(s.prompts.count) held-out records cut to \(l.promptTokens) tokens, each continued by \(l.maxTokens) greedy tokens, plainly and with `--speculate exit:auto` (calibrated on `\(r.data.calibration)`, draft vocabulary \(l.draftVocabulary > 0 ? "\(l.draftVocabulary) tokens" : "the full head")); tokens/s include the prompt, not exit:auto's one-time calibration.",
        ] + SystemReport.lines(threads: r.threads ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    static func markdown(_ s: LayerSkipSummary) -> String {
        func cell(_ t: String) -> String { t.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        func table(_ t: (header: [String], rows: [[String]])) -> String {
            ([t.header, t.header.map { _ in "---" }] + t.rows).map { "| " + $0.map(cell).joined(separator: " | ") + " |" }.joined(separator: "\n")
        }
        var md = "# LayerSkip study: \(URL(fileURLWithPath: s.recipe.model).lastPathComponent)\n\n"
        md += intro(s).map { "- " + $0 }.joined(separator: "\n") + "\n\n## Models\n\n" + table(modelTable(s)) + "\n\n"
        md += s.finalModel.map { "The exported model is `\($0)/` (with speculation.json): `prune generate \(s.recipe.output)/\($0) --prompt … --speculate exit:auto`.\n\n" } ?? ""
        md += "## Exits\n\n![exit agreement](exits.svg)\n\n" + table(exitTable(s)) + "\n"
        return md
    }

    static func html(_ s: LayerSkipSummary, chart: String) -> String {
        func cells(_ row: [String], _ tag: String) -> String {
            "<tr>" + row.enumerated().map { i, c in
                "<\(tag)\(i > 0 && tag == "td" && c.first.map { $0.isNumber || $0 == "+" || $0 == "-" } == true ? " class=\"num\"" : "")>\(RunReport.escape(c))</\(tag)>"
            }.joined() + "</tr>"
        }
        func table(_ t: (header: [String], rows: [[String]])) -> String {
            "<div class=\"scroll\"><table>" + cells(t.header, "th") + t.rows.map { cells($0, "td") }.joined() + "</table></div>"
        }
        let name = RunReport.escape(URL(fileURLWithPath: s.recipe.model).lastPathComponent)
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>LayerSkip study: \(name)</title>
        <style>
        \(RunReport.stylesheet)
        </style></head><body>
        <h1>LayerSkip study: \(name)</h1>
        <ul>\(intro(s).map { "<li>" + RunReport.withCode($0) + "</li>" }.joined())</ul>
        <h2>Models</h2>
        \(table(modelTable(s)))
        \(s.finalModel.map { "<p>The exported model is <code>\(RunReport.escape($0))/</code> (with speculation.json).</p>" } ?? "")
        <h2>Exits</h2>
        <figure class="wide">\(RunReport.inline(chart))<figcaption>exit agreement</figcaption></figure>
        \(table(exitTable(s)))
        </body></html>

        """
    }
}
