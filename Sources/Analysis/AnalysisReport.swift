// The analysis as a readable table: per block size the best block to cut with its distance, the layers it
// drops and the runner-up; layers ranked by Block Influence; removal and early-exit figures when measured.
import Foundation

/// Text rendering of a `LayerAnalysis`.
public enum AnalysisReport {
    /// The whole report, lines ending in "\n".
    public static func text(_ a: LayerAnalysis) -> String {
        var out = "\(a.model): \(a.layers) layers; \(a.samples) samples, \(a.tokens) tokens (≤ \(a.context) per sample)"
        if let dataset = a.dataset { out += " from \(dataset)" }
        out += "\n" + String(format: "full-model loss %.4f over %d predictions\n", a.fullLoss, a.lossTokens)
        out += blockTable(a)
        out += influenceTable(a)
        if let removal = a.removalLoss { out += removalTable(removal, fullLoss: a.fullLoss) }
        if let loss = a.earlyExitLoss, let agreement = a.earlyExitTop1Agreement { out += earlyExitTable(loss, agreement) }
        return out
    }

    /// Layers as inclusive ranges, "2-3" or "5" or "1-2,4".
    static func ranges(_ layers: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        let sorted = layers.sorted()
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
            parts.append(i == j ? "\(sorted[i])" : "\(sorted[i])-\(sorted[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    static func blockTable(_ a: LayerAnalysis) -> String {
        var out = "\nbest block per size n, by angular distance d = arccos(cos(h_l, h_{l+n}))/π at each sample's last token\n"
        out += "   n  drop layers   d(last)   d(all)    second best (d)\n"
        for n in a.blockSizes {
            guard let best = a.bestBlock(size: n) else { continue }
            let all = a.angularDistance.allTokens[n][best.start].map { String(format: "%.4f", $0) } ?? "-"
            let second = best.secondBest.map { "\(ranges($0.layers)) (\(String(format: "%.4f", $0.distance)))" } ?? "-"
            out += pad(String(n), 4, right: true) + "  " + pad(ranges(best.layers), 12) + "  "
                + String(format: "%.4f", best.distance) + "    " + pad(all, 6) + "    " + second + "\n"
        }
        return out
    }

    static func influenceTable(_ a: LayerAnalysis) -> String {
        var out = "\nBlock Influence BI = 1 − mean cos(h_i, h_{i+1}), lowest (least useful) first\n"
        out += "rank  layer   BI\n"
        let order = a.blockInfluence.indices.sorted { (a.blockInfluence[$0], $0) < (a.blockInfluence[$1], $1) }
        for (rank, i) in order.enumerated() {
            out += pad(String(rank + 1), 4, right: true) + "  " + pad(String(i), 5, right: true) + "   "
                + String(format: "%.4f", a.blockInfluence[i]) + "\n"
        }
        return out
    }

    static func removalTable(_ loss: [Double], fullLoss: Double) -> String {
        var out = String(format: "\nloss with one layer removed (full model %.4f), lowest first\n", fullLoss)
        out += "layer   loss      Δ loss\n"
        for i in loss.indices.sorted(by: { (loss[$0], $0) < (loss[$1], $1) }) {
            out += pad(String(i), 5, right: true) + String(format: "   %.4f   %+.4f\n", loss[i], loss[i] - fullLoss)
        }
        return out
    }

    static func earlyExitTable(_ loss: [Double], _ agreement: [Double]) -> String {
        var out = "\nearly exit: h_l through the final norm and lm_head\n"
        out += "    l   loss      top-1 agreement with the full model\n"
        for (i, value) in loss.enumerated() {
            out += pad(String(i + 1), 5, right: true) + String(format: "   %-8.4f  %5.1f%%\n", value, 100 * agreement[i])
        }
        return out
    }

    private static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }
}
