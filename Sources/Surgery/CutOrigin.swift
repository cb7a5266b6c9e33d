// Where a cut checkpoint came from: the source model, the layers dropped and kept, how they were chosen,
// the command and the tool. Written beside the weights as prune_cut.json (for programs) and as the
// facts of the README.md model card (for people), so a cut model found later explains itself.
import Foundation
import Support

/// How the dropped layers were chosen, as the caller of `LayerCutter.cut` knows it.
public struct CutSelection: Codable, Equatable, Sendable {
    /// "layers" (given explicitly), "block" (best block by angular distance) or "metric" (lowest scores).
    public var method: String
    /// The option as given, e.g. "--layers 2-3", "--block 2", "--metric bi --count 2".
    public var option: String
    /// The analysis.json the choice was read from, if any.
    public var analysis: String?
    /// The calibration data a fresh analysis ran on, if any.
    public var dataset: String?
    /// One readable sentence, e.g. "best block of 2 by last-token angular distance (d = 0.1234)".
    public var reason: String

    public init(method: String, option: String, analysis: String? = nil, dataset: String? = nil, reason: String) {
        self.method = method
        self.option = option
        self.analysis = analysis
        self.dataset = dataset
        self.reason = reason
    }
}

/// The provenance of one cut, as stored in prune_cut.json.
public struct CutOrigin: Codable, Equatable, Sendable {
    /// The file the facts are written to, beside config.json.
    public static let fileName = "prune_cut.json"

    /// The source checkpoint directory.
    public var sourceModel: String
    /// L of the source.
    public var layersBefore: Int
    /// Source indices removed and kept, ascending, 0-based.
    public var dropped: [Int]
    public var kept: [Int]
    /// The same as inclusive ranges, e.g. "2-3" ("0-based, inclusive").
    public var droppedRanges: String
    public var keptRanges: String
    public var selection: CutSelection
    /// The command line that made the cut, as typed (arguments shell-quoted).
    public var command: String
    /// The tool and its version, e.g. "prune 0.3.0".
    public var tool: String
    /// What changed the kept layer before each removed run ("replaceme", "laco"); nil: the run was only deleted.
    public var repair: String?

    enum CodingKeys: String, CodingKey {
        case sourceModel = "source_model", layersBefore = "layers_before", dropped, kept
        case droppedRanges = "dropped_ranges", keptRanges = "kept_ranges", selection, command, tool, repair
    }

    /// The origin of a cut of `layersBefore` layers dropping `dropped`; `command` is the argument list.
    public init(sourceModel: String, layersBefore: Int, dropped: [Int], selection: CutSelection, command: [String], tool: String,
                repair: String? = nil) {
        self.sourceModel = sourceModel
        self.layersBefore = layersBefore
        self.dropped = dropped.sorted()
        kept = (0..<layersBefore).filter { !dropped.contains($0) }
        droppedRanges = LayerSelection(self.dropped).description
        keptRanges = LayerSelection(kept).description
        self.selection = selection
        self.command = command.map(Self.shellQuoted).joined(separator: " ")
        self.tool = tool
        self.repair = repair
    }

    /// `argument` as a POSIX shell reads it back: bare when safe, else in single quotes.
    static func shellQuoted(_ argument: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        if !argument.isEmpty && argument.allSatisfy(safe.contains) { return argument }
        return "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// prune_cut.json's bytes (sorted keys, indented, final newline).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder.sorted
        encoder.outputFormatting.insert(.withoutEscapingSlashes)   // paths read as typed
        return try encoder.encode(self) + Data("\n".utf8)
    }
}
