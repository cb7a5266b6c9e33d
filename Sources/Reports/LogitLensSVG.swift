// The logit lens of one prompt as a picture: one row per exit (the last layer on top), one column per position
// (the input token under it), each cell the exit's top next-token piece shaded by its probability. Where a column
// turns dark early, the prediction was made early — what self-speculation from an early exit relies on.
import Foundation

public enum LogitLensSVG {
    /// `inputs[t]`: the token at position t; `top[l][t]`, `probability[l][t]`: exit l+1's top piece there.
    public static func render(title: String, inputs: [String], top: [[String]], probability: [[Double]]) -> String {
        let layers = top.count, positions = inputs.count
        let cellW = 64.0, cellH = 15.0, left = 56.0, topMargin = 40.0, bottom = 52.0
        let width = left + cellW * Double(positions) + 12, height = topMargin + cellH * Double(layers) + bottom
        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="system-ui, sans-serif">
        <rect width="100%" height="100%" fill="#fff"/>
        <text x="\(left)" y="20" font-size="13" font-weight="600">\(HeatMapSVG.escape(title))</text>

        """
        for l in 0..<layers {
            let y = topMargin + cellH * Double(layers - 1 - l)
            s += "<text x=\"\(left - 6)\" y=\"\(y + cellH - 4)\" font-size=\"9\" text-anchor=\"end\" fill=\"#57606a\">\(l + 1)</text>\n"
            for t in 0..<min(positions, top[l].count) {
                let p = min(max(probability[l][t], 0), 1), x = left + cellW * Double(t)
                let light = 255 - Int(p * 200)   // white (p = 0) to deep blue (p = 1)
                s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"rgb(%d,%d,255)\"><title>exit %d, position %d: %@ (p = %.3f)</title></rect>\n",
                            x, y, cellW - 1, cellH - 1, light, light, l + 1, t, HeatMapSVG.escape(shown(top[l][t], 40)), p)
                s += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"%@\">%@</text>\n", x + 2, y + cellH - 4,
                            p > 0.55 ? "#fff" : "#1f2328", HeatMapSVG.escape(shown(top[l][t], 10)))
            }
        }
        let base = topMargin + cellH * Double(layers)
        for t in 0..<positions {
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" font-weight=\"600\" transform=\"rotate(30 %.1f %.1f)\">%@</text>\n",
                        left + cellW * Double(t) + 4, base + 12, left + cellW * Double(t) + 4, base + 12, HeatMapSVG.escape(shown(inputs[t], 12)))
        }
        s += "<text x=\"8\" y=\"\(topMargin - 6)\" font-size=\"9\" fill=\"#57606a\">exit</text>\n</svg>\n"
        return s
    }

    /// A vocabulary piece as text: byte-level and SentencePiece spaces as "␣", newlines as "↵", cut to `most` characters.
    static func shown(_ piece: String, _ most: Int) -> String {
        let text = piece.replacingOccurrences(of: "Ġ", with: "␣").replacingOccurrences(of: "▁", with: "␣")
            .replacingOccurrences(of: "Ċ", with: "↵").replacingOccurrences(of: "\n", with: "↵")
        return text.count > most ? String(text.prefix(most - 1)) + "…" : text
    }
}
