// A self-contained SVG line chart: several named series of (x, y) points on shared axes, e.g. training and
// held-out loss against the step. Viewable in any browser; no scripts, no external files.
import Foundation

/// Renders series of points as an SVG line chart with axes, ticks and a legend.
public enum LineChartSVG {
    /// One named line.
    public struct Series {
        public let name: String
        public let points: [(x: Double, y: Double)]
        /// Draw a marker at every point (sparse series such as evaluations).
        public let markers: Bool
        public init(name: String, points: [(x: Double, y: Double)], markers: Bool = false) {
            self.name = name
            self.points = points
            self.markers = markers
        }
    }

    static let colours = ["#3b6fb6", "#d1603d", "#4c9a2a", "#8e5ea2", "#a0522d"]

    /// The SVG text. Non-finite points are left out; `logY` plots y on a log scale (positive values only).
    public static func render(series: [Series], title: String, xAxis: String, yAxis: String, logY: Bool = false,
                              width: Double = 720, height: Double = 420) -> String {
        let clean = series.map { s in
            Series(name: s.name, points: s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }, markers: s.markers)
        }
        let all = clean.flatMap(\.points)
        let ty: (Double) -> Double = logY ? { log10($0) } : { $0 }
        var xr = (all.map(\.x).min() ?? 0, all.map(\.x).max() ?? 1)
        var yr = (all.map { ty($0.y) }.min() ?? 0, all.map { ty($0.y) }.max() ?? 1)
        if xr.1 <= xr.0 { xr.1 = xr.0 + 1 }
        if yr.1 <= yr.0 { yr = (yr.0 - 0.5, yr.1 + 0.5) }
        let pad = (yr.1 - yr.0) * 0.05
        yr = (yr.0 - pad, yr.1 + pad)
        let left = 70.0, right = 20.0, top = title.isEmpty ? 20.0 : 44.0, bottom = 56.0
        let pw = width - left - right, ph = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - xr.0) / (xr.1 - xr.0) * pw }
        func py(_ y: Double) -> Double { top + ph - (ty(y) - yr.0) / (yr.1 - yr.0) * ph }
        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>

        """
        if !title.isEmpty {
            svg += "<text x=\"\(f(width / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(escape(title))</text>\n"
        }
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#888\"/>\n"
        // Ticks: about five per axis at round values (decades on a log axis).
        for x in ticks(xr.0, xr.1) {
            svg += "<line x1=\"\(f(px(x)))\" y1=\"\(f(top + ph))\" x2=\"\(f(px(x)))\" y2=\"\(f(top + ph + 4))\" stroke=\"#888\"/>"
            svg += "<text x=\"\(f(px(x)))\" y=\"\(f(top + ph + 16))\" text-anchor=\"middle\">\(label(x))</text>\n"
        }
        for v in ticks(yr.0, yr.1) {
            let y = top + ph - (v - yr.0) / (yr.1 - yr.0) * ph
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + pw))\" y2=\"\(f(y))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(label(logY ? pow(10, v) : v))</text>\n"
        }
        svg += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(escape(xAxis))</text>\n"
        svg += "<text transform=\"translate(16 \(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yAxis + (logY ? " (log scale)" : "")))</text>\n"
        for (i, s) in clean.enumerated() where !s.points.isEmpty {
            let colour = colours[i % colours.count]
            let path = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            svg += "<polyline class=\"series\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(path)\"><title>\(escape(s.name))</title></polyline>\n"
            if s.markers {
                for p in s.points {
                    svg += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(colour)\"><title>\(escape(s.name)) \(label(p.x)): \(String(format: "%.4g", p.y))</title></circle>"
                }
                svg += "\n"
            }
            let ly = top + 14 + Double(i) * 16
            svg += "<line x1=\"\(f(left + pw - 150))\" y1=\"\(f(ly - 4))\" x2=\"\(f(left + pw - 130))\" y2=\"\(f(ly - 4))\" stroke=\"\(colour)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(f(left + pw - 124))\" y=\"\(f(ly))\">\(escape(s.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// Round tick values covering lo…hi.
    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? magnitude * 10
        var out: [Double] = []
        var v = ceil(lo / step) * step
        while v <= hi + step * 1e-9 { out.append(v); v += step }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        return String(format: "%.3g", v)
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
