// The report of a `prune run`: report.md (GitHub renders it; images are files beside it, linked relatively) and
// report.html (one self-contained file, every chart inline SVG), both drawn from the same RunSummary: the model
// and data, the angular-distance heat map with the chosen cut outlined, the strategy table beside the full model,
// the removal loss of each block, the healing loss curves, the early-exit curve, and the same prompts continued
// by the full, cut and healed models with the drift check.
import Analysis
import Foundation
import Reports
import Support

/// Writing a run's report.
public enum RunReport {
    /// Writes summary.json, the charts, report.md and report.html into `directory`.
    public static func write(_ s: RunSummary, analysis: LayerAnalysis, to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(s), to: directory.appendingPathComponent("summary.json"))
        var images: [(file: String, alt: String, svg: String)] = []
        images.append(("heatmap.svg", "angular distance with the chosen cut", heatMap(s, analysis)))
        if let scan = s.blockRemovalLoss, let n = s.count {
            let full = s.calibrationFullLoss.map { (value: $0, label: String(format: "full model %.3f", $0)) }
            images.append(("block-removal.svg", "calibration loss with each block removed", LayerProfileSVG.render(
                title: n == 1 ? "Calibration loss with layer l removed (lowest circled)" : "Calibration loss with layers l…l+\(n - 1) removed (blocks of \(n); lowest circled)",
                panels: [LayerProfileSVG.Panel(title: "loss without the block starting at l", values: scan, reference: full, marksLowest: true)],
                layerAxis: "first layer of the block")))
        }
        if let exits = analysis.earlyExitLoss {
            images.append(("early-exit.svg", "early-exit loss per layer", LayerProfileSVG.render(
                title: "Early exit: layer l's output through the final norm and lm_head",
                panels: [LayerProfileSVG.Panel(title: "calibration loss at exit l (l = 1…L)", values: exits, firstLayer: 1,
                                               reference: (analysis.fullLoss, String(format: "full model %.3f", analysis.fullLoss)))])))
        }
        if let curves = try lossCurves(s, run: directory) { images.append(("heal-loss.svg", "healing loss curves", curves)) }
        for image in images { try AtomicFile.write(Data(image.svg.utf8), to: directory.appendingPathComponent(image.file)) }
        try AtomicFile.write(Data(markdown(s, analysis: analysis, images: images.map { ($0.file, $0.alt) }).utf8),
                             to: directory.appendingPathComponent("report.md"))
        try AtomicFile.write(Data(html(s, analysis: analysis, images: images).utf8), to: directory.appendingPathComponent("report.html"))
    }

    /// The heat map of the last-token angular distance with the first contiguous strategy's cut outlined.
    static func heatMap(_ s: RunSummary, _ a: LayerAnalysis) -> String {
        let L = a.layers
        let rows = (1...max(L, 1)).map { n in Array(a.angularDistance.lastToken[n].prefix(L)) }
        var marks = [Int?](repeating: nil, count: rows.count)
        var label = "chosen cut"
        if let c = s.strategies.map(\.choice).first(where: \.isContiguous) {
            marks[c.dropped.count - 1] = c.dropped.first
            label = "cut \(c.rangesText) (\(c.strategy.rawValue))"
        }
        return HeatMapSVG.render(
            matrix: rows, rowLabels: (1...max(L, 1)).map(String.init), columnLabels: (0..<L).map(String.init),
            title: "Angular distance of the block of n layers from layer l (last token), \(URL(fileURLWithPath: a.model).lastPathComponent)",
            rowAxis: "block size n", columnAxis: "start layer l", legendTitle: "arccos(cos)/π",
            valueFormat: { String(format: "%.2f", $0) }, marks: marks, markLabel: label)
    }

    /// Training and held-out loss of every healing run, one chart.
    static func lossCurves(_ s: RunSummary, run: URL) throws -> String? {
        var series: [LineChartSVG.Series] = []
        // One curve per healing run (strategies that chose the same layers share one); with more than two runs,
        // the held-out loss alone, so that the colours stay apart.
        var runs: [(dir: String, names: [String])] = []
        for r in s.strategies {
            guard let h = r.healDirectory else { continue }
            if let i = runs.firstIndex(where: { $0.dir == h }) { runs[i].names.append(r.choice.strategy.rawValue) } else { runs.append((h, [r.choice.strategy.rawValue])) }
        }
        let trainingToo = runs.count <= 2
        for heal in runs {
            let h = heal.dir
            let url = run.appendingPathComponent(h).appendingPathComponent("metrics.jsonl")
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            let records = try MetricsLog.read(url)
            let train = records.compactMap { rec -> (x: Double, y: Double)? in
                guard let step = rec["step"] as? Int, let l = rec["loss"] as? Double else { return nil }
                return (Double(step), l)
            }
            let held = records.compactMap { rec -> (x: Double, y: Double)? in
                guard let step = rec["step"] as? Int, let l = rec["eval_loss"] as? Double else { return nil }
                return (Double(step), l)
            }
            let name = heal.names.joined(separator: " = ")
            if trainingToo { series.append(LineChartSVG.Series(name: "\(name) training", points: train)) }
            series.append(LineChartSVG.Series(name: "\(name) held-out", points: held, markers: true))
        }
        guard !series.isEmpty else { return nil }
        return LineChartSVG.render(series: series, title: "Healing: loss per optimizer step", xAxis: "optimizer step", yAxis: "next-token loss")
    }

    // MARK: the table

    static func number(_ x: Double?, _ format: String = "%.4f") -> String {
        guard let x else { return "–" }
        return x.isFinite ? String(format: format, x) : "\(x)"
    }

    static func perplexity(_ x: Double?) -> String {
        guard let x else { return "–" }
        if !x.isFinite { return "\(x)" }
        return x >= 1e5 ? String(format: "%.3g", x) : String(format: "%.2f", x)
    }

    static func bytes(_ b: Int) -> String {
        let mb = Double(b) / 1_048_576
        return mb >= 1 ? String(format: "%.1f MB", mb) : String(format: "%.0f KB", Double(b) / 1024)
    }

    /// Header and rows of the strategy table (plain strings, for Markdown and HTML).
    static func table(_ s: RunSummary) -> (header: [String], rows: [[String]]) {
        let healed = s.strategies.contains { $0.healed != nil }
        var header = ["model", "dropped", "layers", "parameters", "size", "loss", "perplexity", "KL from full", "top-1 agreement"]
        if healed { header += ["healed loss", "healed perplexity", "healed KL", "healed top-1"] }
        header.append("gen tok/s")
        func speed(_ label: String) -> String {
            let v = s.continuations.compactMap { row in row.first { $0.model == label }?.tokensPerSecond }
            return v.isEmpty ? "–" : String(format: "%.0f", v.reduce(0, +) / Double(v.count))
        }
        var rows: [[String]] = []
        var full = ["full", "–", "\(s.full.layers)", "\(s.full.parameters)", bytes(s.full.bytesOnDisk), number(s.full.loss),
                    perplexity(s.full.perplexity), "0", "1"]
        if healed { full += ["", "", "", ""] }
        full.append(speed("full"))
        rows.append(full)
        for r in s.strategies {
            let name = r.choice.strategy.rawValue
            var row = [name, r.choice.rangesText, "\(r.cut.layers)", "\(r.cut.parameters)", bytes(r.cut.bytesOnDisk), number(r.cut.loss),
                       perplexity(r.cut.perplexity), number(r.cut.meanKL), number(r.cut.top1Agreement, "%.3f")]
            if healed {
                row += [number(r.healed?.loss), perplexity(r.healed?.perplexity), number(r.healed?.meanKL), number(r.healed?.top1Agreement, "%.3f")]
            }
            row.append(speed(r.healed != nil ? "\(name) healed" : "\(name) cut"))
            rows.append(row)
        }
        return (header, rows)
    }

    static func summaryLines(_ s: RunSummary, _ a: LayerAnalysis) -> [String] {
        let r = s.recipe
        var lines = [
            "Recipe `\(s.recipeFile)`, run directory `\(r.output)`.",
            "Model `\(r.model)`: \(s.layers) layers, \(s.full.parameters) parameters.",
            "Calibration `\(r.data.calibration)`: \(a.samples) samples, \(a.tokens) tokens (context \(a.context)). "
                + "Held-out `\(r.data.valid)`: \(s.full.tokens) targets in windows of \(r.evaluate.context)"
                + (r.data.train.map { ". Healing data `\($0)`" } ?? "") + ".",
            "Cut: " + (s.count.map { "\($0) layers" } ?? "explicit layers") + " by " + r.cut.strategies.map(\.rawValue).joined(separator: ", ")
                + "; layers are 0-based and inclusive.",
        ]
        if r.heal.enabled {
            lines.append("Healing: \(r.heal.method.rawValue)" + (r.heal.method == .lora ? " r=\(r.heal.rank) alpha=\(r.heal.alpha)" : " \(r.heal.trainLayers ?? "")\(r.heal.trainLMHead ? " + lm_head" : "")")
                         + ", \(r.heal.steps) steps of \(r.heal.batchSize)×\(r.heal.context) tokens, lr \(r.heal.lr)"
                         + (r.heal.all ? ", every strategy" : ", first strategy only") + ".")
        }
        lines.append("Stages run: \(s.stagesRun.isEmpty ? "none" : s.stagesRun.joined(separator: ", ")); skipped (unchanged): "
                     + (s.stagesSkipped.isEmpty ? "none" : s.stagesSkipped.joined(separator: ", ")) + ".")
        if let f = s.finalModel { lines.append("Exported model: `\(f)/`.") }
        return lines
    }

    static func driftText(_ c: Continuation) -> String {
        guard let d = c.drift else { return "original" }
        let flags = d.flags.isEmpty ? "ok" : "⚠ " + d.flags.joined(separator: ", ")
        return String(format: "%@ (class distance %.2f, repetition %.2f)", flags, d.classDistance, d.repetition)
    }

    // MARK: Markdown

    static func markdown(_ s: RunSummary, analysis a: LayerAnalysis, images: [(file: String, alt: String)]) -> String {
        func cell(_ t: String) -> String { t.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        var md = "# Pruning study: \(URL(fileURLWithPath: s.recipe.model).lastPathComponent)\n\n"
        md += summaryLines(s, a).map { "- \($0)\n" }.joined() + "\n"
        md += "## Strategies\n\n"
        for r in s.strategies { md += "- **\(r.choice.strategy.rawValue)**: \(r.choice.reason)\n" }
        let t = table(s)
        md += "\n| " + t.header.joined(separator: " | ") + " |\n|" + t.header.map { _ in "---" }.joined(separator: "|") + "|\n"
        for row in t.rows { md += "| " + row.map(cell).joined(separator: " | ") + " |\n" }
        md += "\nLoss and perplexity on the held-out data (the windows `prune eval` uses); KL is KL(full ‖ model) in nats per position.\n\n"
        md += "## Charts\n\n"
        for i in images { md += "![\(i.alt)](\(i.file))\n\n" }
        md += "Per-layer measurements: ![per-layer](analysis/\(AnalysisFiles.layersSVGName))\n\n"
        if !s.continuations.isEmpty {
            md += "## Continuations (greedy, \(s.recipe.report.maxTokens) tokens)\n\n"
            for (p, row) in zip(s.prompts, s.continuations) {
                md += "**Prompt:** \(cell(p))\n\n| model | continuation | drift |\n|---|---|---|\n"
                for c in row { md += "| \(c.model) | \(cell(c.text)) | \(driftText(c)) |\n" }
                md += "\n"
            }
        }
        return md
    }

    // MARK: HTML

    static func escape(_ t: String) -> String {
        t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// An SVG document's text without its XML declaration, to sit inside HTML.
    static func inline(_ svg: String) -> String {
        guard let start = svg.range(of: "<svg") else { return svg }
        return String(svg[start.lowerBound...])
    }

    static func html(_ s: RunSummary, analysis a: LayerAnalysis, images: [(file: String, alt: String, svg: String)]) -> String {
        let t = table(s)
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>Pruning study: \(escape(URL(fileURLWithPath: s.recipe.model).lastPathComponent))</title>
        <style>
        body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
        table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
        th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top; }
        th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
        td.text { text-align: left; max-width: 520px; white-space: pre-wrap; }
        .warn { color: #b00020; font-weight: bold; } figure { margin: 1.5em 0; } svg { max-width: 100%; height: auto; }
        code { background: #f5f5f5; padding: 1px 4px; }
        </style></head><body>
        <h1>Pruning study: \(escape(URL(fileURLWithPath: s.recipe.model).lastPathComponent))</h1>
        <ul>
        """
        for line in summaryLines(s, a) {
            // `code` spans as <code>.
            let parts = escape(line).split(separator: "`", omittingEmptySubsequences: false)
            h += "<li>" + parts.enumerated().map { $0.offset % 2 == 1 ? "<code>\($0.element)</code>" : String($0.element) }.joined() + "</li>\n"
        }
        h += "</ul>\n<h2>Strategies</h2>\n<ul>\n"
        for r in s.strategies { h += "<li><b>\(r.choice.strategy.rawValue)</b>: \(escape(r.choice.reason))</li>\n" }
        h += "</ul>\n<table><tr>" + t.header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
        for row in t.rows { h += "<tr>" + row.map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n" }
        h += "</table>\n<p>Loss and perplexity on the held-out data (the windows <code>prune eval</code> uses); KL is KL(full ‖ model) in nats per position.</p>\n"
        h += "<h2>Charts</h2>\n"
        for i in images { h += "<figure>\(inline(i.svg))<figcaption>\(escape(i.alt))</figcaption></figure>\n" }
        h += "<figure>\(inline(AnalysisFiles.layerProfile(a)))<figcaption>per-layer measurements</figcaption></figure>\n"
        if !s.continuations.isEmpty {
            h += "<h2>Continuations (greedy, \(s.recipe.report.maxTokens) tokens)</h2>\n"
            for (p, row) in zip(s.prompts, s.continuations) {
                h += "<p><b>Prompt:</b> \(escape(p))</p>\n<table><tr><th>model</th><th>continuation</th><th>drift</th></tr>\n"
                for c in row {
                    let flagged = !(c.drift?.flags.isEmpty ?? true)
                    h += "<tr><td>\(escape(c.model))</td><td class=\"text\">\(escape(c.text))</td><td\(flagged ? " class=\"warn\"" : "")>\(escape(driftText(c)))</td></tr>\n"
                }
                h += "</table>\n"
            }
        }
        h += "</body></html>\n"
        return h
    }
}
