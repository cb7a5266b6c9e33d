// Training metrics as JSON lines (one object per step or evaluation), flushed line by line so that a killed
// run keeps every line it reported. A resumed run first drops the lines past its checkpoint's step, so that
// the file reads like one uninterrupted run.
import Foundation
import Support

/// An append-only JSONL file of metric records.
public final class MetricsLog {
    public let url: URL
    private let handle: FileHandle

    /// Opens `url` for appending (created if missing). With `truncatingAfterStep`, lines whose "step" is larger
    /// are removed first (resume from that step).
    public init(url: URL, truncatingAfterStep step: Int? = nil) throws {
        self.url = url
        let fm = FileManager.default
        if let step, let data = fm.contents(atPath: url.path) {
            let kept = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { line in
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let s = obj["step"] as? Int else { return false }
                return s <= step
            }
            try AtomicFile.write(Data(kept.map { $0 + "\n" }.joined().utf8), to: url)
        } else if !fm.fileExists(atPath: url.path) || step == nil {
            guard fm.createFile(atPath: url.path, contents: nil) else { throw PruneError(file: url, "cannot create") }
        }
        guard let h = FileHandle(forWritingAtPath: url.path) else { throw PruneError(file: url, "cannot open for writing") }
        handle = h
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    /// Appends one record (keys sorted; non-finite numbers at any depth become null, as JSON has no NaN).
    public func append(_ record: [String: Any]) {
        handle.write(Data((FiniteJSON.line(record).text + "\n").utf8))
    }

    /// Every record in a metrics file.
    public static func read(_ url: URL) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw PruneError(file: url, "cannot read") }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}
