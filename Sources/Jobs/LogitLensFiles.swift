// Where `prune analyze --logit-lens` writes: logit-lens.json (LogitLens: per exit entropy, agreement with the last
// layer and the stream's norm; the prompt's picture), logit-lens.svg (the picture) and logit-lens-layers.svg (the
// three per-exit curves).
import Analysis
import Foundation
import Reports
import Support

public enum LogitLensFiles {
    /// Calibration samples the lens looks through (each exit costs an lm_head product per position).
    public static let samples = 8
    /// Tokens of the default picture (the first sample's first tokens).
    public static let pictureTokens = 16

    /// Writes the three files into `directory`; returns them.
    public static func write(_ lens: LogitLens, to directory: URL) throws -> [URL] {
        let (json, nonFinite) = try FiniteJSON.encode(lens)
        if nonFinite > 0 { throw PruneError(file: directory, "the logit lens has \(nonFinite) non-finite values; nothing written") }
        let files = ["logit-lens.json", "logit-lens-layers.svg"] + (lens.picture != nil ? ["logit-lens.svg"] : [])
        let urls = files.map { directory.appendingPathComponent($0) }
        try AtomicFile.write(json, to: urls[0])
        let layers = LayerProfileSVG.render(
            title: "Logit lens over \(lens.positions) positions: each layer's output through the final norm and lm_head",
            panels: [
                LayerProfileSVG.Panel(title: "entropy of the exit's next-token distribution (nats)", values: lens.entropy),
                LayerProfileSVG.Panel(title: "top-1 agreement with the last layer", values: lens.agreement),
                LayerProfileSVG.Panel(title: "mean norm of the residual stream after the layer", values: Array(lens.hiddenNorm.dropFirst())),
            ], layerAxis: "layer (0-based)")
        try AtomicFile.write(Data(layers.utf8), to: urls[1])
        if let p = lens.picture {
            let svg = LogitLensSVG.render(title: "Logit lens: the top next token of each exit at each position (darker: more probable)",
                                          inputs: p.tokens, top: p.topPieces, probability: p.probability)
            try AtomicFile.write(Data(svg.utf8), to: urls[2])
        }
        return urls
    }
}
