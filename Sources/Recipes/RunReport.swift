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
        try AtomicFile.write(try JSONEncoder.sorted.encode(s), to: directory.appendingPathComponent("summary.json"))
        var images: [(file: String, alt: String, svg: String)] = []
        images.append(("heatmap.svg", "angular distance with the chosen cut", heatMap(s, analysis)))
        if let scan = s.blockRemovalLoss, let n = s.count {
            let full = s.calibrationFullLoss.map { (value: $0, label: String(format: "full model %.3f", $0)) }
            images.append(("block-removal.svg", "calibration loss with each block removed", LayerProfileSVG.render(
                title: n == 1 ? "Calibration loss with layer l removed (lowest circled)" : "Calibration loss with layers l…l+\(n - 1) removed (blocks of \(n); lowest circled)",
                panels: [LayerProfileSVG.Panel(title: "loss without the block starting at l", values: scan, reference: full, marksLowest: true)],
                layerAxis: "first layer of the block (0-based)")))
        }
        if let exits = analysis.earlyExitLoss {
            // exits[i] is the output of layer i (0-based), numbered as the per-layer chart numbers its layers.
            images.append(("early-exit.svg", "early-exit loss per layer", LayerProfileSVG.render(
                title: "Early exit: the output of layer l through the final norm and lm_head",
                panels: [LayerProfileSVG.Panel(title: "calibration loss when the model stops after layer l", values: exits,
                                               reference: (analysis.fullLoss, String(format: "full model %.3f", analysis.fullLoss)))],
                layerAxis: "exit after layer (0-based)")))
        }
        if let curves = try lossCurves(s, run: directory) { images.append(("heal-loss.svg", "healing loss curves", curves)) }
        for image in images { try AtomicFile.write(Data(image.svg.utf8), to: directory.appendingPathComponent(image.file)) }
        let note = try healingNote(s, run: directory)
        try AtomicFile.write(Data(markdown(s, analysis: analysis, images: images.map { ($0.file, $0.alt) }, healingNote: note).utf8),
                             to: directory.appendingPathComponent("report.md"))
        try AtomicFile.write(Data(html(s, analysis: analysis, images: images, healingNote: note).utf8),
                             to: directory.appendingPathComponent("report.html"))
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
            rowAxis: "block size n", columnAxis: "start layer l (0-based)", legendTitle: "arccos(cos)/π",
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
        let scored = s.full.task != nil   // evaluate.task: acc_norm ± its standard error beside each perplexity
        func task(_ e: ModelEvaluation?) -> [String] {
            guard scored else { return [] }
            guard let t = e?.task else { return ["–"] }
            return [String(format: "%.3f", t.accNorm) + (t.accNormStderr.map { String(format: " ± %.3f", $0) } ?? "")]
        }
        var header = ["model", "dropped", "layers", "parameters", "size", "loss", "perplexity", "KL from full", "top-1 agreement"]
            + (scored ? ["task acc_norm"] : [])
        if healed { header += ["healed loss", "healed perplexity", "healed KL", "healed top-1"] + (scored ? ["healed task acc_norm"] : []) }
        header.append("gen tok/s")
        func speed(_ label: String) -> String {
            let v = s.continuations.compactMap { row in row.first { $0.model == label }?.tokensPerSecond }
            return v.isEmpty ? "–" : String(format: "%.0f", v.reduce(0, +) / Double(v.count))
        }
        var rows: [[String]] = []
        var full = ["full", "–", "\(s.full.layers)", "\(s.full.parameters)", bytes(s.full.bytesOnDisk), number(s.full.loss),
                    perplexity(s.full.perplexity), "0", "1"] + task(s.full)
        if healed { full += ["", "", "", ""] + (scored ? [""] : []) }
        full.append(speed("full"))
        rows.append(full)
        for r in s.strategies {
            let name = r.choice.strategy.rawValue
            var row = [name, r.choice.rangesText, "\(r.cut.layers)", "\(r.cut.parameters)", bytes(r.cut.bytesOnDisk), number(r.cut.loss),
                       perplexity(r.cut.perplexity), number(r.cut.meanKL), number(r.cut.top1Agreement, "%.3f")] + task(r.cut)
            if healed {
                row += [number(r.healed?.loss), perplexity(r.healed?.perplexity), number(r.healed?.meanKL), number(r.healed?.top1Agreement, "%.3f")]
                    + task(r.healed)
            }
            row.append(speed(r.healed != nil ? "\(name) healed" : "\(name) cut"))
            rows.append(row)
        }
        return (header, rows)
    }

    /// The table's first two columns (model, dropped layers) are text; the others are numbers, right-aligned.
    static let textColumns = 2

    static func summaryLines(_ s: RunSummary, _ a: LayerAnalysis) -> [String] {
        let r = s.recipe
        var lines = [
            "Recipe `\(s.recipeFile)`, run directory `\(r.output)`.",
            "Model `\(r.model)`: \(Counted.noun(s.layers, "layer")), \(Counted.noun(s.full.parameters, "parameter")).",
            "Calibration `\(r.data.calibration)`: \(Counted.noun(a.samples, "sample")), \(Counted.noun(a.tokens, "token")) (context \(a.context)). "
                + "Held-out `\(r.data.valid)`: \(Counted.noun(s.full.tokens, "target")) in windows of \(Counted.noun(r.evaluate.context, "token"))"
                + (r.data.train.map { ". Healing data `\($0)`" } ?? "") + ".",
            "Cut: " + (s.count.map { Counted.noun($0, "layer") } ?? "explicit layers") + " by " + r.cut.strategies.map(\.rawValue).joined(separator: ", ")
                + (r.cut.replace.map { $0 == .replaceme ? ", the layer before each removed block given ReplaceMe's linear map (fit on the calibration data)"
                                                     : ", each removed block's parameter differences merged into the layer before it (LaCo)" } ?? "")
                + "; layers are 0-based and inclusive.",
        ]
        if r.heal.enabled {
            lines.append("Healing: \(r.heal.method.rawValue)" + (r.heal.method == .lora ? " r=\(r.heal.rank) alpha=\(r.heal.alpha)" : " \(r.heal.trainLayers ?? "")\(r.heal.trainLMHead ? " + lm_head" : "")")
                         + ", \(Counted.noun(r.heal.steps, "step")) of \(r.heal.batchSize)×\(r.heal.context) tokens, lr \(r.heal.lr)"
                         + (r.heal.all ? ", every strategy" : ", first strategy only") + ".")
        }
        lines.append("Stages run: \(s.stagesRun.isEmpty ? "none" : s.stagesRun.joined(separator: ", ")); skipped (unchanged): "
                     + (s.stagesSkipped.isEmpty ? "none" : s.stagesSkipped.joined(separator: ", ")) + ".")
        if let f = s.finalModel { lines.append("Exported model: `\(f)/`.") }
        return lines
    }

    static let tableNote = "Loss and perplexity on the held-out data (the windows `prune eval` uses); KL is KL(full ‖ model) in nats per position; "
        + "task acc_norm (with `evaluate.task`) is `prune eval --task`'s, lm-eval-harness's length-normalised accuracy."

    /// Why the healing log's last held-out perplexity is not the table's: finetune evaluates a prefix of the
    /// held-out file in windows of the healing context while it trains, the table the whole file in windows of
    /// evaluate.context (both on the same weights: finetune checks that the merged files compute what the
    /// model in memory computes). Nil without a healing run that logged a held-out evaluation.
    static func healingNote(_ s: RunSummary, run: URL) throws -> String? {
        guard let r = s.strategies.first(where: { $0.healDirectory != nil }), let h = r.healDirectory, let healed = r.healed else { return nil }
        let url = run.appendingPathComponent(h).appendingPathComponent("metrics.jsonl")
        guard FileManager.default.fileExists(atPath: url.path),
              let last = try MetricsLog.read(url).last(where: { $0["eval_loss"] is Double }),
              let loss = last["eval_loss"] as? Double, let step = last["step"] as? Int else { return nil }
        let targets = last["eval_tokens"] as? Int
        let heal = s.recipe.heal, evaluate = s.recipe.evaluate
        let part = targets.map { $0 < s.full.tokens ? "the first \(Counted.noun($0, "target")) of the held-out data" : "all of the held-out data" }
            ?? "the held-out data"
        return "The healing chart's held-out loss is finetune's own evaluation while it trains, on \(part) in windows of "
            + "\(Counted.noun(heal.context, "token")) (`heal.eval_tokens`, `heal.context`): "
            + "perplexity \(perplexity(exp(loss))) at step \(step) for \(r.choice.strategy.rawValue). The table measures the exported merged "
            + "model on all \(Counted.noun(s.full.tokens, "target")) in windows of \(Counted.noun(evaluate.context, "token")) "
            + "(`evaluate.context`): \(perplexity(healed.perplexity)). The difference is in what is measured, not in the weights: "
            + "finetune checks that the merged files compute what the model in memory computes."
    }

    static func driftText(_ c: Continuation) -> String {
        guard let d = c.drift else { return "original" }
        let flags = d.flags.isEmpty ? "ok" : "⚠ " + d.flags.joined(separator: ", ")
        return String(format: "%@ (class distance %.2f, repetition %.2f)", flags, d.classDistance, d.repetition)
    }

    /// A continuation as the report shows it. One that ran to the token budget (`maxTokens`) may end inside a
    /// word (it ends in a letter or digit): it is cut back to its last whole word, and ends in "…". One the model
    /// ended itself is shown whole.
    static func shown(_ c: Continuation, maxTokens: Int) -> String {
        let whole = c.text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard c.tokens.map({ $0 >= maxTokens }) ?? true, !whole.isEmpty else { return whole }
        var kept = Substring(c.text)
        if let last = kept.last, last.isLetter || last.isNumber, let space = kept.lastIndex(where: \.isWhitespace) {
            kept = kept[..<space]
        }
        let text = kept.trimmingCharacters(in: .whitespacesAndNewlines)
        return (text.isEmpty ? whole : text) + "…"
    }

    // MARK: Markdown

    static func markdown(_ s: RunSummary, analysis a: LayerAnalysis, images: [(file: String, alt: String)], healingNote: String?) -> String {
        func cell(_ t: String) -> String { t.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        var md = "# Pruning study: \(URL(fileURLWithPath: s.recipe.model).lastPathComponent)\n\n"
        md += summaryLines(s, a).map { "- \($0)\n" }.joined() + "\n"
        md += "## Strategies\n\n"
        for r in s.strategies { md += "- **\(r.choice.strategy.rawValue)**: \(r.choice.reason)\n" }
        let t = table(s)
        md += "\n| " + t.header.joined(separator: " | ") + " |\n|"
            + t.header.indices.map { $0 < textColumns ? ":---" : "---:" }.joined(separator: "|") + "|\n"
        for row in t.rows { md += "| " + row.map(cell).joined(separator: " | ") + " |\n" }
        md += "\n\(tableNote)\n\n"
        md += "## Charts\n\n"
        for i in images { md += "![\(i.alt)](\(i.file))\n\n" }
        md += "Per-layer measurements: ![per-layer](analysis/\(AnalysisFiles.layersSVGName))\n\n"
        if let healingNote { md += "\(healingNote)\n\n" }
        if !s.continuations.isEmpty {
            md += "## Continuations (greedy, up to \(Counted.noun(s.recipe.report.maxTokens, "token")))\n\n"
            for (p, row) in zip(s.prompts, s.continuations) {
                md += "**Prompt:** \(cell(p))\n\n| model | continuation | drift |\n|:---|:---|:---|\n"
                for c in row { md += "| \(c.model) | \(cell(shown(c, maxTokens: s.recipe.report.maxTokens))) | \(driftText(c)) |\n" }
                md += "\n"
            }
        }
        return md
    }

    // MARK: HTML

    static func escape(_ t: String) -> String {
        t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Text with `code` spans, escaped, the spans as <code>.
    static func withCode(_ t: String) -> String {
        escape(t).split(separator: "`", omittingEmptySubsequences: false).enumerated()
            .map { $0.offset % 2 == 1 ? "<code>\($0.element)</code>" : String($0.element) }.joined()
    }

    /// An SVG document's text without its XML declaration, to sit inside HTML, as wide as its box: the fixed
    /// width and height give way to width="100%", and the viewBox keeps the proportions.
    static func inline(_ svg: String) -> String {
        guard let start = svg.range(of: "<svg"), let end = svg[start.upperBound...].firstIndex(of: ">") else { return svg }
        var tag = String(svg[start.lowerBound..<end])
        for attribute in ["width", "height"] {
            if let r = tag.range(of: " \(attribute)=\"[^\"]*\"", options: .regularExpression) { tag.removeSubrange(r) }
        }
        return tag + " width=\"100%\"" + svg[end...]
    }

    /// The width an SVG asks for (its root's width attribute), to tell small charts from wide ones.
    static func naturalWidth(_ svg: String) -> Double? {
        guard let r = svg.range(of: "<svg[^>]* width=\"[0-9.]+\"", options: .regularExpression) else { return nil }
        return Double(svg[r].split(separator: "\"").last.map(String.init) ?? "")
    }

    /// A compact page in one centred column: system fonts, tables with borders and
    /// right-aligned numbers, charts as wide as the column (two small ones side by side).
    static let stylesheet = """
    body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2328; background: #fff;
           max-width: 62rem; margin: 2.5rem auto; padding: 0 1.25rem; }
    h1 { font-size: 1.75rem; line-height: 1.25; margin: 0 0 1rem; }
    h2 { font-size: 1.3rem; margin: 2.25rem 0 .75rem; padding-bottom: .3rem; border-bottom: 1px solid #d8dee4; }
    p, ul { margin: .6rem 0; } li { margin: .2rem 0; }
    code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: .85em;
                background: #f3f4f6; border-radius: 4px; }
    code { padding: .1em .35em; } pre { padding: .75rem 1rem; overflow-x: auto; }
    .scroll { overflow-x: auto; margin: 1rem 0; }
    table { border-collapse: collapse; font-size: .78rem; }
    th, td { border: 1px solid #d0d7de; padding: .25rem .4rem; text-align: left; vertical-align: top; }
    th { background: #f6f8fa; font-weight: 600; }
    .num { text-align: right; font-variant-numeric: tabular-nums; } td.num { white-space: nowrap; }
    td.text { min-width: 20rem; font-size: .9rem; }
    .warn { color: #b42318; font-weight: 600; }
    .note { font-size: .9rem; color: #4b5563; }
    .figures { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 1.5rem; align-items: start; margin: 1rem 0; }
    .figures figure.wide { grid-column: 1 / -1; }
    @media (max-width: 40rem) { .figures { grid-template-columns: 1fr; } }
    figure { margin: 0; } figure svg { display: block; width: 100%; height: auto; }
    figcaption { font-size: .85rem; color: #57606a; margin-top: .35rem; text-align: center; }
    """

    static func html(_ s: RunSummary, analysis a: LayerAnalysis, images: [(file: String, alt: String, svg: String)], healingNote: String?) -> String {
        let t = table(s)
        let name = escape(URL(fileURLWithPath: s.recipe.model).lastPathComponent)
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Pruning study: \(name)</title>
        <style>
        \(stylesheet)
        </style></head><body>
        <h1>Pruning study: \(name)</h1>
        <ul>

        """
        for line in summaryLines(s, a) { h += "<li>\(withCode(line))</li>\n" }
        h += "</ul>\n<h2>Strategies</h2>\n<ul>\n"
        for r in s.strategies { h += "<li><b>\(r.choice.strategy.rawValue)</b>: \(escape(r.choice.reason))</li>\n" }
        func cells(_ row: [String], _ tag: String) -> String {
            row.enumerated().map { "<\(tag)\($0.offset < textColumns ? "" : " class=\"num\"")>\(escape($0.element))</\(tag)>" }.joined()
        }
        h += "</ul>\n<div class=\"scroll\"><table>\n<tr>\(cells(t.header, "th"))</tr>\n"
        for row in t.rows { h += "<tr>\(cells(row, "td"))</tr>\n" }
        h += "</table></div>\n<p class=\"note\">\(withCode(tableNote))</p>\n"
        h += "<h2>Charts</h2>\n<div class=\"figures\">\n"
        // Small charts two to a row, then the wide ones (the healing curves, which the note below explains).
        let charts = (images.map { ($0.svg, $0.alt) } + [(AnalysisFiles.layerProfile(a), "per-layer measurements")])
            .map { (svg: $0.0, alt: $0.1, wide: (naturalWidth($0.0) ?? 0) >= 480) }
        for c in charts.filter({ !$0.wide }) + charts.filter(\.wide) {
            h += "<figure\(c.wide ? " class=\"wide\"" : "")>\(inline(c.svg))<figcaption>\(escape(c.alt))</figcaption></figure>\n"
        }
        h += "</div>\n"
        if let healingNote { h += "<p class=\"note\">\(withCode(healingNote))</p>\n" }
        if !s.continuations.isEmpty {
            h += "<h2>Continuations (greedy, up to \(Counted.noun(s.recipe.report.maxTokens, "token")))</h2>\n"
            for (p, row) in zip(s.prompts, s.continuations) {
                h += "<p><b>Prompt:</b> \(escape(p))</p>\n<div class=\"scroll\"><table>\n<tr><th>model</th><th>continuation</th><th>drift</th></tr>\n"
                for c in row {
                    let flagged = !(c.drift?.flags.isEmpty ?? true)
                    h += "<tr><td>\(escape(c.model))</td><td class=\"text\">\(escape(shown(c, maxTokens: s.recipe.report.maxTokens)))</td>"
                        + "<td\(flagged ? " class=\"warn\"" : "")>\(escape(driftText(c)))</td></tr>\n"
                }
                h += "</table></div>\n"
            }
        }
        h += "</body></html>\n"
        return h
    }
}
