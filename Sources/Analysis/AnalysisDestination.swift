// Where `prune analyze` writes, checked before the analysis runs (it can take hours): never into the
// model directory or inside it, where the files would be mistaken for part of the checkpoint, and never
// over an earlier analysis unless asked (--force), as `prune cut` treats its output.
import Foundation
import Support

/// The refusals for an analysis output directory.
public enum AnalysisDestination {
    /// Throws the one-line refusal when `output` may not receive the analysis files of `model`.
    public static func check(output: URL, model: URL, force: Bool) throws {
        if output.resolvedPath == model.resolvedPath {
            throw PruneError(file: output, "is the model directory itself; choose another output directory")
        }
        if output.isInside(model) {
            throw PruneError(file: output, "is inside the model directory \(model.path); choose a directory outside it")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: output.path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else { throw PruneError(file: output, "exists and is not a directory") }
        let earlier = [AnalysisFiles.jsonName, AnalysisFiles.hdf5Name, AnalysisFiles.svgName, AnalysisFiles.layersSVGName]
            .filter { FileManager.default.fileExists(atPath: output.appendingPathComponent($0).path) }
        if !earlier.isEmpty && !force {
            throw PruneError(file: output, "already holds an analysis (\(earlier.joined(separator: ", "))); use --force to replace it")
        }
    }
}
