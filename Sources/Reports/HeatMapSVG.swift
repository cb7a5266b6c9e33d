// A self-contained SVG heat map for result matrices such as the angular distance d[n][l] between the
// input of layer l and the input of layer l+n. Viewable in any browser; no scripts, no external files.
import Foundation
import Support

/// Renders a matrix of optional values as an SVG heat map with a viridis colour scale.
///
/// One `<rect class="cell">` per defined value; undefined cells (nil, NaN, ±∞, or past the end of a
/// short row) are left out, so the grey plot background shows through. Rows are drawn top to bottom in
/// the order given, columns left to right. Each cell carries a `<title>` tooltip with its full value.
/// The picture is as wide as the grid and legend: a long title wraps instead of widening it.
public enum HeatMapSVG {
    /// Grids with at most this many columns print each value inside its cell.
    public static let maximumColumnsWithValues = 40

    /// The SVG text of a heat map.
    ///
    /// - Parameters:
    ///   - matrix: rows of values; rows may be shorter than `columnLabels` (a triangular matrix).
    ///   - rowLabels: one label per row, drawn left of the grid; missing labels show the row index.
    ///   - columnLabels: one label per column, drawn below the grid; missing labels show the column index.
    ///   - title: the heading above the grid.
    ///   - rowAxis: the name of the vertical axis (e.g. "block size n").
    ///   - columnAxis: the name of the horizontal axis (e.g. "start layer l").
    ///   - legendTitle: the caption above the colour bar (e.g. "angular distance").
    ///   - range: the values mapped to the two ends of the colour scale; defaults to the data's min…max.
    ///     Values outside it get the end colours. Fix it to compare several maps.
    ///   - showValues: print values inside the cells; defaults to `columns ≤ maximumColumnsWithValues`.
    ///   - valueFormat: how a value is printed in a cell and on the legend.
    ///   - marks: per row, the column of one cell to outline (e.g. the best block of each size); nil: none.
    ///   - markLabel: what the outline means, shown in the legend.
    public static func render(
        matrix: [[Double?]], rowLabels: [String], columnLabels: [String],
        title: String, rowAxis: String, columnAxis: String,
        legendTitle: String = "", range: ClosedRange<Double>? = nil, showValues: Bool? = nil,
        valueFormat: (Double) -> String = { String(format: "%.2f", $0) },
        marks: [Int?] = [], markLabel: String = "marked"
    ) -> String {
        let rows = matrix.count
        let columns = max(columnLabels.count, matrix.map(\.count).max() ?? 0)
        let rowNames = (0..<rows).map { $0 < rowLabels.count ? rowLabels[$0] : String($0) }
        let columnNames = (0..<columns).map { $0 < columnLabels.count ? columnLabels[$0] : String($0) }

        // Non-finite values cannot be placed on a colour scale: they count as undefined.
        let defined = matrix.flatMap { $0.compactMap { $0 } }.filter(\.isFinite)
        let scale: ClosedRange<Double>? = range ?? defined.min().map { $0...defined.max()! }
        let printsValues = showValues ?? (columns <= maximumColumnsWithValues)
        let hasUndefined = matrix.contains { row in row.count < columns || row.contains { !($0?.isFinite ?? false) } }

        // Geometry: cells wide enough for the printed values, labels thinned so they never overlap.
        let widestValue = printsValues ? defined.map { valueFormat($0).count }.max() ?? 1 : 0
        let cellWidth = printsValues ? max(28, widestValue * 6 + 8) : 12
        let cellHeight = printsValues ? 20 : 12
        let labelFont = 11.0
        let columnLabelWidth = Double(columnNames.map(\.count).max() ?? 1) * labelFont * 0.6 + 4
        // Column labels wider than a cell are turned to read upwards, so every one still fits.
        let rotatesColumnLabels = columnLabelWidth > Double(cellWidth)
        let columnStep = rotatesColumnLabels ? max(1, Int(((labelFont + 2) / Double(cellWidth)).rounded(.up))) : 1
        let columnLabelBand = rotatesColumnLabels ? columnLabelWidth + 8 : 18
        let rowStep = max(1, Int(((labelFont + 2) / Double(cellHeight)).rounded(.up)))
        let rowLabelWidth = Double(rowNames.map(\.count).max() ?? 1) * labelFont * 0.6

        let plotX = 22 + 8 + rowLabelWidth + 6
        let plotWidth = Double(columns * cellWidth)
        let plotHeight = Double(rows * cellHeight)
        let markedRows = marks.enumerated().filter { r, c in
            guard let c, r < rows, c < matrix[r].count, let v = matrix[r][c] else { return false }
            return v.isFinite
        }

        let legendX = plotX + plotWidth + 28
        let legendBarWidth = 16.0
        let legendTexts = scale.map { [valueFormat($0.upperBound), valueFormat($0.lowerBound)] } ?? ["no values"]
        let legendTextWidth = Double(max(legendTexts.map(\.count).max() ?? 0, 9)) * labelFont * 0.6
        let legendRight = max(legendX + legendBarWidth + 6 + legendTextWidth,
                              legendX + Double(legendTitle.count) * labelFont * 0.6,
                              markedRows.isEmpty ? 0 : legendX + legendBarWidth + 6 + Double(markLabel.count) * labelFont * 0.6)

        // The title wraps at the width of grid and legend (at least 320 px), so a small grid is not lost
        // in a page as wide as its title.
        let width = legendRight + 16
        let titleLines = wrap(title, characters: Int(max(width - plotX - 8, 320) / (16 * 0.6)))
        let plotY = title.isEmpty ? 16.0 : 44.0 + 20 * Double(titleLines.count - 1)
        let legendY = plotY + 18
        let legendHeight = max(plotHeight - 18, 120)
        let columnAxisY = plotY + plotHeight + columnLabelBand + 20
        let keyLines = (hasUndefined ? 1 : 0) + (markedRows.isEmpty ? 0 : 1)
        let height = max(columnAxisY + 14, legendY + legendHeight + 16 + 22 * Double(keyLines))
        let pageWidth = max(width, plotX + Double(titleLines.map(\.count).max() ?? 0) * 16 * 0.6 + 8)

        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(fmt(pageWidth))" height="\(fmt(height))" \
        viewBox="0 0 \(fmt(pageWidth)) \(fmt(height))" font-family="Helvetica, Arial, sans-serif">

        """
        svg += "<rect class=\"page\" width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        if !title.isEmpty {
            svg += "<text class=\"title\" x=\"\(fmt(plotX))\" y=\"26\" font-size=\"16\" font-weight=\"bold\">"
                + lines(titleLines, x: plotX, spacing: 20) + "</text>\n"
        }

        // The grey background is what undefined cells show.
        svg += "<rect class=\"plot-background\" x=\"\(fmt(plotX))\" y=\"\(fmt(plotY))\" width=\"\(fmt(plotWidth))\" "
            + "height=\"\(fmt(plotHeight))\" fill=\"\(undefinedColor)\"/>\n"

        // Cells, with a hairline gap when values are printed so neighbouring equal colours stay apart.
        svg += printsValues ? "<g class=\"cells\" stroke=\"#ffffff\" stroke-width=\"1\">\n"
                            : "<g class=\"cells\" shape-rendering=\"crispEdges\">\n"
        var values = ""
        for (r, row) in matrix.enumerated() {
            for (c, entry) in row.enumerated() {
                guard let value = entry, value.isFinite, let scale else { continue }
                let rgb = color(at: position(of: value, in: scale))
                let x = plotX + Double(c * cellWidth), y = plotY + Double(r * cellHeight)
                let tooltip = "\(rowAxis) \(rowNames[r]), \(columnAxis) \(columnNames[c]): \(String(format: "%.6g", value))"
                svg += "<rect class=\"cell\" x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(cellWidth)\" height=\"\(cellHeight)\" "
                    + "fill=\"\(hex(rgb))\"><title>\(escape(tooltip))</title></rect>\n"
                if printsValues {
                    // Dark text on the light (yellow-green) end of the scale, white on the dark end.
                    let ink = luminance(rgb) > 0.5 ? "#000000" : "#ffffff"
                    values += "<text x=\"\(fmt(x + Double(cellWidth) / 2))\" y=\"\(fmt(y + Double(cellHeight) / 2 + 3.5))\" "
                        + "fill=\"\(ink)\">\(escape(valueFormat(value)))</text>\n"
                }
            }
        }
        svg += "</g>\n"
        if printsValues {
            svg += "<g class=\"values\" font-size=\"10\" text-anchor=\"middle\">\n" + values + "</g>\n"
        }
        // Outlines over the cells (after the values, so no neighbour covers them), inset so that marks in
        // neighbouring rows stay two rectangles.
        if !markedRows.isEmpty {
            svg += "<g class=\"marks\" fill=\"none\" stroke=\"\(markColor)\" stroke-width=\"2\">\n"
            for (r, c) in markedRows {
                let x = plotX + Double(c! * cellWidth), y = plotY + Double(r * cellHeight)
                svg += "<rect class=\"mark\" x=\"\(fmt(x + 3))\" y=\"\(fmt(y + 3))\" width=\"\(cellWidth - 6)\" height=\"\(cellHeight - 6)\"/>\n"
            }
            svg += "</g>\n"
        }

        // Axis labels: row labels right-aligned left of the grid, column labels centred below it.
        svg += "<g class=\"row-labels\" font-size=\"\(fmt(labelFont))\" text-anchor=\"end\" fill=\"#222222\">\n"
        for r in stride(from: 0, to: rows, by: rowStep) {
            let y = plotY + (Double(r) + 0.5) * Double(cellHeight) + 4
            svg += "<text x=\"\(fmt(plotX - 6))\" y=\"\(fmt(y))\">\(escape(rowNames[r]))</text>\n"
        }
        svg += "</g>\n<g class=\"column-labels\" font-size=\"\(fmt(labelFont))\" "
            + "text-anchor=\"\(rotatesColumnLabels ? "end" : "middle")\" fill=\"#222222\">\n"
        for c in stride(from: 0, to: columns, by: columnStep) {
            let x = plotX + (Double(c) + 0.5) * Double(cellWidth)
            if rotatesColumnLabels {
                // Turned a quarter left about its end, the text hangs down from the grid; +4 centres it.
                let (tx, ty) = (fmt(x + 4), fmt(plotY + plotHeight + 6))
                svg += "<text x=\"\(tx)\" y=\"\(ty)\" transform=\"rotate(-90 \(tx) \(ty))\">\(escape(columnNames[c]))</text>\n"
            } else {
                svg += "<text x=\"\(fmt(x))\" y=\"\(fmt(plotY + plotHeight + 15))\">\(escape(columnNames[c]))</text>\n"
            }
        }
        svg += "</g>\n"

        // Axis titles.
        let rowAxisY = plotY + plotHeight / 2
        svg += "<text class=\"axis-title\" x=\"16\" y=\"\(fmt(rowAxisY))\" font-size=\"13\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 16 \(fmt(rowAxisY)))\">\(escape(rowAxis))</text>\n"
        svg += "<text class=\"axis-title\" x=\"\(fmt(plotX + plotWidth / 2))\" y=\"\(fmt(columnAxisY))\" "
            + "font-size=\"13\" text-anchor=\"middle\">\(escape(columnAxis))</text>\n"

        // Legend: a vertical colour bar, maximum at the top.
        svg += "<g class=\"legend\" font-size=\"\(fmt(labelFont))\">\n"
        if !legendTitle.isEmpty {
            svg += "<text x=\"\(fmt(legendX))\" y=\"\(fmt(legendY - 8))\">\(escape(legendTitle))</text>\n"
        }
        if let scale {
            svg += "<defs><linearGradient id=\"heatmap-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n"
            for (i, stop) in viridis.enumerated() {
                let offset = Double(i) / Double(viridis.count - 1)
                svg += "<stop offset=\"\(fmt(offset * 100))%\" stop-color=\"\(hex(stop))\"/>\n"
            }
            svg += "</linearGradient></defs>\n"
            svg += "<rect class=\"legend-bar\" x=\"\(fmt(legendX))\" y=\"\(fmt(legendY))\" width=\"\(fmt(legendBarWidth))\" "
                + "height=\"\(fmt(legendHeight))\" fill=\"url(#heatmap-scale)\" stroke=\"#444444\" stroke-width=\"0.5\"/>\n"
            let textX = legendX + legendBarWidth + 6
            svg += "<text class=\"legend-max\" x=\"\(fmt(textX))\" y=\"\(fmt(legendY + 4))\">\(escape(valueFormat(scale.upperBound)))</text>\n"
            svg += "<text class=\"legend-mid\" x=\"\(fmt(textX))\" y=\"\(fmt(legendY + legendHeight / 2 + 4))\">"
                + "\(escape(valueFormat((scale.lowerBound + scale.upperBound) / 2)))</text>\n"
            svg += "<text class=\"legend-min\" x=\"\(fmt(textX))\" y=\"\(fmt(legendY + legendHeight + 4))\">\(escape(valueFormat(scale.lowerBound)))</text>\n"
        } else {
            svg += "<text class=\"legend-empty\" x=\"\(fmt(legendX))\" y=\"\(fmt(legendY + 4))\">no values</text>\n"
        }
        var swatchY = legendY + legendHeight + 18
        if hasUndefined {
            svg += "<rect class=\"legend-undefined\" x=\"\(fmt(legendX))\" y=\"\(fmt(swatchY))\" width=\"\(fmt(legendBarWidth))\" "
                + "height=\"12\" fill=\"\(undefinedColor)\" stroke=\"#444444\" stroke-width=\"0.5\"/>\n"
            svg += "<text x=\"\(fmt(legendX + legendBarWidth + 6))\" y=\"\(fmt(swatchY + 10))\">undefined</text>\n"
            swatchY += 22
        }
        if !markedRows.isEmpty {
            svg += "<rect class=\"legend-mark\" x=\"\(fmt(legendX + 1))\" y=\"\(fmt(swatchY + 1))\" width=\"\(fmt(legendBarWidth - 2))\" "
                + "height=\"10\" fill=\"none\" stroke=\"\(markColor)\" stroke-width=\"2\"/>\n"
            svg += "<text x=\"\(fmt(legendX + legendBarWidth + 6))\" y=\"\(fmt(swatchY + 10))\">\(escape(markLabel))</text>\n"
        }
        svg += "</g>\n</svg>\n"
        return svg
    }

    /// Writes `svg` to `url` atomically: a hidden temporary sibling first, renamed over `url` at the end.
    public static func write(_ svg: String, to url: URL) throws {
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).partial-\(UUID().uuidString)")
        do {
            try Data(svg.utf8).write(to: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw PruneError(file: url, "cannot write the SVG: \(error.localizedDescription)")
        }
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw PruneError(file: url, "cannot move the SVG into place: \(reason)")
        }
    }

    // MARK: colour scale

    /// Matplotlib's viridis sampled at 9 evenly spaced points (perceptually uniform, colour-blind safe,
    /// readable in greyscale); values in between are interpolated linearly.
    static let viridis: [(r: Double, g: Double, b: Double)] = [
        (0x44, 0x01, 0x54), (0x47, 0x2D, 0x7B), (0x3B, 0x52, 0x8B), (0x2C, 0x72, 0x8E), (0x21, 0x90, 0x8C),
        (0x27, 0xAD, 0x81), (0x5D, 0xC8, 0x63), (0xAA, 0xDC, 0x32), (0xFD, 0xE7, 0x25),
    ]

    /// What undefined cells show (the plot background).
    static let undefinedColor = "#d9d9d9"

    /// The outline of marked cells: a red that stands apart from every viridis colour.
    static let markColor = "#e8112d"

    /// The content of a `<text>` element: plain for one line, one `<tspan>` per line for more.
    static func lines(_ lines: [String], x: Double, spacing: Int) -> String {
        guard lines.count > 1 else { return escape(lines.first ?? "") }
        return lines.enumerated().map { i, line in
            "<tspan x=\"\(fmt(x))\" dy=\"\(i == 0 ? 0 : spacing)\">\(escape(line))</tspan>"
        }.joined()
    }

    /// `text` in lines of at most `characters` (longer words stay whole), split at spaces.
    static func wrap(_ text: String, characters: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > characters {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        return lines.isEmpty || !line.isEmpty ? lines + [line] : lines
    }

    /// The colour at `t` ∈ [0, 1] of the scale (clamped), as 0…255 channels.
    static func color(at t: Double) -> (r: Double, g: Double, b: Double) {
        let scaled = min(max(t, 0), 1) * Double(viridis.count - 1)
        let lower = min(Int(scaled), viridis.count - 2)
        let f = scaled - Double(lower)
        let a = viridis[lower], b = viridis[lower + 1]
        return (a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f)
    }

    /// Where `value` falls in `scale`, 0…1; a one-point scale puts everything in the middle.
    static func position(of value: Double, in scale: ClosedRange<Double>) -> Double {
        let span = scale.upperBound - scale.lowerBound
        return span > 0 ? (value - scale.lowerBound) / span : 0.5
    }

    private static func hex(_ rgb: (r: Double, g: Double, b: Double)) -> String {
        func byte(_ x: Double) -> Int { Int(min(max(x.rounded(), 0), 255)) }
        return String(format: "#%02x%02x%02x", byte(rgb.r), byte(rgb.g), byte(rgb.b))
    }

    /// Relative brightness 0…1 (Rec. 601 weights), enough to choose black or white text.
    private static func luminance(_ rgb: (r: Double, g: Double, b: Double)) -> Double {
        (0.299 * rgb.r + 0.587 * rgb.g + 0.114 * rgb.b) / 255
    }

    /// Coordinates with at most one decimal, so the file stays small and diff-friendly.
    static func fmt(_ x: Double) -> String {
        let rounded = (x * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(format: "%.1f", rounded)
    }

    /// Text safe inside XML elements and attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(ch)
            }
        }
        return out
    }
}
