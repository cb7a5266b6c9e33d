// Which dataset files are read, and how, decided by extension alone: JSON Lines (.jsonl, or .json holding
// JSON Lines) or one plain-text document (.txt, .text, .md). Anything else (.parquet, .csv, .arrow, …) is
// refused with the list, never read as text by accident.
import Foundation
import Support

/// The dataset file formats and their extensions.
public enum DatasetFormat: Equatable {
    case jsonLines
    case text

    /// Extensions read as JSON Lines.
    public static let jsonLinesExtensions: Set<String> = ["jsonl", "json"]
    /// Extensions read as one plain-text document.
    public static let textExtensions: Set<String> = ["txt", "text", "md"]

    /// Every supported extension, sorted, with dots (".json, .jsonl, .md, .text, .txt").
    public static var supportedList: String {
        (jsonLinesExtensions.union(textExtensions)).sorted().map { "." + $0 }.joined(separator: ", ")
    }

    /// The format of `url` by its extension; an unknown one is refused naming the file and the supported ones.
    public init(of url: URL) throws {
        let ext = url.pathExtension.lowercased()
        if Self.jsonLinesExtensions.contains(ext) {
            self = .jsonLines
        } else if Self.textExtensions.contains(ext) {
            self = .text
        } else {
            throw PruneError(file: url, "unsupported dataset format \(ext.isEmpty ? "(no extension)" : "." + ext); supported: \(Self.supportedList)")
        }
    }
}
