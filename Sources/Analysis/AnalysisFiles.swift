// The files of an analysis directory: analysis.json (the `LayerAnalysis` as JSON, null where d is
// undefined), analysis.h5 (the same numbers as HDF5 datasets for h5py, NaN where undefined),
// analysis.svg (a heat map of the last-token d, the best block of each size outlined) and
// analysis-layers.svg (Block Influence, removal and early-exit loss per layer). The four are written into
// a temporary directory and published together: a new directory is renamed into place whole; into an
// existing one the files are renamed under the interruption lock, analysis.json last. An interrupted or
// failed run leaves no new directory and no partial set of files.
import Foundation
import Reports
import Support

/// Writing and reading an analysis directory.
public enum AnalysisFiles {
    public static let jsonName = "analysis.json"
    public static let hdf5Name = "analysis.h5"
    public static let svgName = "analysis.svg"
    public static let layersSVGName = "analysis-layers.svg"

    /// Writes the four files into `directory` (created if missing) and returns their URLs.
    @discardableResult
    public static func write(_ a: LayerAnalysis, to directory: URL) throws -> [URL] {
        let fm = FileManager.default
        // analysis.json last: where it is, the other three are too.
        let names = [hdf5Name, svgName, layersSVGName, jsonName]
        if !fm.fileExists(atPath: directory.path) {
            try AtomicDirectory.write(directory, replacing: false) { try writeFiles(a, into: $0) }
        } else {
            let marker = directory.appendingPathComponent("analysis")
            AtomicFile.removeStaleTemporaries(of: marker)
            let staging = AtomicFile.temporarySibling(of: marker)
            try Interruption.whileTemporary(staging) {
                do {
                    try AtomicFile.createTemporaryDirectory(staging)
                    try writeFiles(a, into: staging)
                    try Interruption.publishing {
                        for name in names {
                            try AtomicFile.replace(directory.appendingPathComponent(name), with: staging.appendingPathComponent(name))
                        }
                    }
                    try? fm.removeItem(at: staging)
                } catch {
                    try? fm.removeItem(at: staging)
                    throw error
                }
            }
        }
        return [jsonName, hdf5Name, svgName, layersSVGName].map { directory.appendingPathComponent($0) }
    }

    /// The four files, written into `directory`.
    static func writeFiles(_ a: LayerAnalysis, into directory: URL) throws {
        try writeJSON(a, to: directory.appendingPathComponent(jsonName))
        try writeHDF5(a, to: directory.appendingPathComponent(hdf5Name))
        try HeatMapSVG.write(heatMap(a), to: directory.appendingPathComponent(svgName))
        try HeatMapSVG.write(layerProfile(a), to: directory.appendingPathComponent(layersSVGName))
    }

    /// analysis.json: pretty, key-sorted.
    public static func writeJSON(_ a: LayerAnalysis, to url: URL) throws {
        try AtomicFile.write(try JSONEncoder.sorted.encode(a), to: url)
    }

    /// Reads an analysis.json back.
    public static func readJSON(_ url: URL) throws -> LayerAnalysis {
        try JSONFile.read(LayerAnalysis.self, from: url, kind: "an analysis.json written by `prune analyze`")
    }

    /// analysis.h5: datasets named as the JSON keys, the run's description as root attributes.
    public static func writeHDF5(_ a: LayerAnalysis, to url: URL) throws {
        let h5 = try HDF5Writer(creating: url)
        let width = a.layers + 1
        try h5.writeMatrix("angular_distance/last_token", a.angularDistance.lastToken, columns: width)
        try h5.writeMatrix("angular_distance/all_tokens", a.angularDistance.allTokens, columns: width)
        for name in ["angular_distance/last_token", "angular_distance/all_tokens"] {
            try h5.setAttribute("index", "[n, l]: arccos(cos(h_l, h_{l+n}))/pi; NaN where n = 0 or l + n > L", on: name)
        }
        try h5.writeDataset("block_influence", a.blockInfluence)
        try h5.setAttribute("definition", "BI_i = 1 - mean over tokens of cos(h_i, h_{i+1}), i = 0..L-1", on: "block_influence")
        if let removal = a.removalLoss {
            try h5.writeDataset("removal_loss", removal)
            try h5.setAttribute("definition", "mean next-token loss with layer i alone removed, i = 0..L-1", on: "removal_loss")
        }
        if let loss = a.earlyExitLoss, let agreement = a.earlyExitTop1Agreement {
            try h5.writeDataset("early_exit_loss", loss)
            try h5.writeDataset("early_exit_top1_agreement", agreement)
            try h5.setAttribute("definition", "h_l through the final norm and lm_head, l = 1..L at index l-1", on: "early_exit_loss")
            try h5.setAttribute("definition", "fraction of positions whose argmax equals the full model's, l = 1..L at index l-1",
                                on: "early_exit_top1_agreement")
        }
        try h5.setAttribute("model", a.model)
        try h5.setAttribute("dataset", a.dataset ?? "")
        try h5.setAttribute("samples", a.samples)
        try h5.setAttribute("tokens", a.tokens)
        try h5.setAttribute("loss_tokens", a.lossTokens)
        try h5.setAttribute("context", a.context)
        try h5.setAttribute("layers", a.layers)
        try h5.setAttribute("full_loss", a.fullLoss)
        try h5.finish()
    }

    /// The SVG heat map of the last-token d: rows n = 1…L, columns l = 0…L−1; in each row n < L the
    /// block `prune cut --block n` would remove is outlined.
    public static func heatMap(_ a: LayerAnalysis) -> String {
        let L = a.layers
        let rows = (1...max(L, 1)).map { n in Array(a.angularDistance.lastToken[n].prefix(L)) }
        let best = (1...max(L, 1)).map { n in n < L ? BlockRanking.ranked(a.angularDistance.lastToken, size: n).first?.start : nil }
        let name = URL(fileURLWithPath: a.model).lastPathComponent
        return HeatMapSVG.render(
            matrix: rows, rowLabels: (1...max(L, 1)).map(String.init), columnLabels: (0..<L).map(String.init),
            title: "Angular distance of the block of n layers from layer l (last token), \(name)",
            rowAxis: "block size n", columnAxis: "start layer l", legendTitle: "arccos(cos)/π",
            valueFormat: { String(format: "%.2f", $0) }, marks: best, markLabel: "best block of size n")
    }

    /// The per-layer charts: Block Influence, and removal and early-exit loss when they were measured,
    /// each beside the full model's loss.
    public static func layerProfile(_ a: LayerAnalysis) -> String {
        let full = (value: a.fullLoss, label: String(format: "full model %.3f", a.fullLoss))
        var panels = [LayerProfileSVG.Panel(title: "Block Influence of layer l, 1 − cos(h_l, h_l+1) (lowest circled)",
                                            values: a.blockInfluence, marksLowest: true)]
        if let removal = a.removalLoss {
            panels.append(LayerProfileSVG.Panel(title: "Loss without layer l (lowest circled)", values: removal,
                                                reference: full, marksLowest: true))
        }
        if let exit = a.earlyExitLoss {
            panels.append(LayerProfileSVG.Panel(title: "Early-exit loss: layer l's output through the final norm and lm_head",
                                                values: exit, reference: full))
        }
        return LayerProfileSVG.render(title: "Per-layer measurements, \(URL(fileURLWithPath: a.model).lastPathComponent)",
                                      panels: panels)
    }
}
