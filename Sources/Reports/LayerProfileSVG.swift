// Per-layer measurements as small line charts stacked in one SVG, one panel per measurement (Block
// Influence, removal loss, early-exit loss) over a shared layer axis, so the layers that matter least
// can be read off at a glance. Self-contained like HeatMapSVG: no scripts, no external files.
import Foundation

/// Renders per-layer series as stacked line charts.
public enum LayerProfileSVG {
    /// One chart: a value per layer (nil where undefined), an optional horizontal reference line.
    public struct Panel {
        public var title: String
        /// Index i: the value at layer `firstLayer + i`.
        public var values: [Double?]
        /// The layer number of `values[0]`.
        public var firstLayer: Int
        /// A horizontal line and its caption, e.g. the full model's loss.
        public var reference: (value: Double, label: String)?
        /// Outline the smallest value (e.g. the layer whose removal costs least).
        public var marksLowest: Bool

        public init(title: String, values: [Double?], firstLayer: Int = 0, reference: (value: Double, label: String)? = nil,
                    marksLowest: Bool = false) {
            self.title = title
            self.values = values
            self.firstLayer = firstLayer
            self.reference = reference
            self.marksLowest = marksLowest
        }
    }

    /// The SVG text of `panels` stacked top to bottom under `title`.
    public static func render(title: String, panels: [Panel], layerAxis: String = "layer",
                              valueFormat: (Double) -> String = { String(format: "%.3f", $0) }) -> String {
        let layers = panels.map { $0.firstLayer + $0.values.count }.max() ?? 0
        // Wide enough to read a few layers, narrow enough for a hundred; titles wrap at the plot's width.
        let step = max(14.0, min(48.0, 560 / Double(max(layers, 1))))
        let plotX = 64.0, plotWidth = step * Double(max(layers, 1))
        let panelHeight = 110.0, gap = 48.0
        let width = max(plotX + plotWidth + 24, 360)
        let titleLines = HeatMapSVG.wrap(title, characters: Int((width - plotX - 8) / (16 * 0.6)))
        let panelTitles = panels.map { HeatMapSVG.wrap($0.title, characters: Int((width - plotX - 8) / (13 * 0.6))) }
        let top = 24 + 20 * Double(titleLines.count) + 8
        // Panel p starts below the earlier panels and its own title lines (16 px each).
        let panelTops = panelTitles.indices.map { p in
            top + Double(p) * (panelHeight + gap) + 16 * Double(panelTitles[...p].map { $0.count }.reduce(0, +)) + 2
        }
        let height = (panelTops.last ?? top) + panelHeight + gap
        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(fmt(width))" height="\(fmt(height))" \
        viewBox="0 0 \(fmt(width)) \(fmt(height))" font-family="Helvetica, Arial, sans-serif">
        <rect class="page" width="100%" height="100%" fill="#ffffff"/>

        """
        svg += "<text class=\"title\" x=\"\(fmt(plotX))\" y=\"26\" font-size=\"16\" font-weight=\"bold\">"
            + HeatMapSVG.lines(titleLines, x: plotX, spacing: 20) + "</text>\n"
        // Thinned so that layer numbers never overlap.
        let labelEvery = max(1, Int((18 / step).rounded(.up)))
        for (p, panel) in panels.enumerated() {
            let y0 = panelTops[p]
            let lines = panelTitles[p]
            svg += "<g class=\"panel\">\n"
            svg += "<text class=\"panel-title\" x=\"\(fmt(plotX))\" y=\"\(fmt(y0 - 8 - 16 * Double(lines.count - 1)))\" font-size=\"13\" "
                + "font-weight=\"bold\">" + HeatMapSVG.lines(lines, x: plotX, spacing: 16) + "</text>\n"
            svg += "<rect class=\"plot-background\" x=\"\(fmt(plotX))\" y=\"\(fmt(y0))\" width=\"\(fmt(plotWidth))\" "
                + "height=\"\(fmt(panelHeight))\" fill=\"#f4f4f4\"/>\n"
            let defined = panel.values.compactMap { $0 }.filter(\.isFinite) + (panel.reference.map { [$0.value] } ?? [])
            guard let low = defined.min(), let high = defined.max() else {
                svg += "<text x=\"\(fmt(plotX + 8))\" y=\"\(fmt(y0 + 20))\" font-size=\"11\">no values</text>\n</g>\n"
                continue
            }
            // A little room above and below, so points on the extremes stay inside.
            let pad = high > low ? (high - low) * 0.08 : max(abs(high) * 0.05, 1e-6)
            let (lo, hi) = (low - pad, high + pad)
            func x(_ i: Int) -> Double { plotX + (Double(panel.firstLayer + i) + 0.5) * step }
            func y(_ v: Double) -> Double { y0 + panelHeight * (hi - v) / (hi - lo) }
            svg += "<g class=\"y-labels\" font-size=\"10\" text-anchor=\"end\" fill=\"#444444\">\n"
            for v in [high, (high + low) / 2, low] where high > low || v == high {
                svg += "<text x=\"\(fmt(plotX - 4))\" y=\"\(fmt(y(v) + 3.5))\">\(escape(valueFormat(v)))</text>\n"
            }
            svg += "</g>\n"
            if let reference = panel.reference {
                svg += "<line class=\"reference\" x1=\"\(fmt(plotX))\" y1=\"\(fmt(y(reference.value)))\" x2=\"\(fmt(plotX + plotWidth))\" "
                    + "y2=\"\(fmt(y(reference.value)))\" stroke=\"#888888\" stroke-dasharray=\"4 3\"/>\n"
                svg += "<text class=\"reference-label\" x=\"\(fmt(plotX + plotWidth - 4))\" y=\"\(fmt(y(reference.value) - 4))\" "
                    + "font-size=\"10\" text-anchor=\"end\" fill=\"#666666\">\(escape(reference.label))</text>\n"
            }
            // The line breaks where a value is undefined.
            var path = "", pen = false
            for (i, v) in panel.values.enumerated() {
                guard let v, v.isFinite else { pen = false; continue }
                path += "\(pen ? "L" : "M")\(fmt(x(i))) \(fmt(y(v))) "
                pen = true
            }
            svg += "<path class=\"series\" d=\"\(path.trimmingCharacters(in: .whitespaces))\" fill=\"none\" stroke=\"#3b528b\" stroke-width=\"1.5\"/>\n"
            let lowest = panel.marksLowest ? panel.values.indices.filter { panel.values[$0]?.isFinite ?? false }
                .min { panel.values[$0]! < panel.values[$1]! } : nil
            for (i, v) in panel.values.enumerated() {
                guard let v, v.isFinite else { continue }
                svg += "<circle class=\"point\" cx=\"\(fmt(x(i)))\" cy=\"\(fmt(y(v)))\" r=\"2.5\" fill=\"#3b528b\">"
                    + "<title>\(escape("\(layerAxis) \(panel.firstLayer + i): \(String(format: "%.6g", v))"))</title></circle>\n"
                if i == lowest {
                    svg += "<circle class=\"lowest\" cx=\"\(fmt(x(i)))\" cy=\"\(fmt(y(v)))\" r=\"6\" fill=\"none\" "
                        + "stroke=\"\(HeatMapSVG.markColor)\" stroke-width=\"2\"><title>lowest</title></circle>\n"
                }
            }
            svg += "<g class=\"x-labels\" font-size=\"10\" text-anchor=\"middle\" fill=\"#444444\">\n"
            for l in stride(from: 0, to: layers, by: labelEvery) {
                svg += "<text x=\"\(fmt(plotX + (Double(l) + 0.5) * step))\" y=\"\(fmt(y0 + panelHeight + 13))\">\(l)</text>\n"
            }
            svg += "</g>\n<text class=\"axis-title\" x=\"\(fmt(plotX + plotWidth / 2))\" y=\"\(fmt(y0 + panelHeight + 27))\" "
                + "font-size=\"11\" text-anchor=\"middle\">\(escape(layerAxis))</text>\n</g>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    private static func fmt(_ x: Double) -> String { HeatMapSVG.fmt(x) }
    private static func escape(_ text: String) -> String { HeatMapSVG.escape(text) }
}
