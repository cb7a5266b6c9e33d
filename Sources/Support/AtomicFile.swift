// Every output is written under a temporary name beside its target and renamed at the end, so that a
// failure midway never leaves a half-written file where a complete one is expected.
import Foundation

/// Atomic file and directory creation by temporary name + rename.
public enum AtomicFile {
    /// Creates `url` through a FileHandle on a temporary sibling; renames on success, deletes on failure.
    public static func write(to url: URL, _ body: (FileHandle) throws -> Void) throws {
        let tmp = temporarySibling(of: url)
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw PruneError(file: url, "cannot create file (does the directory exist and is it writable?)")
        }
        do {
            let handle = try FileHandle(forWritingTo: tmp)
            do {
                try body(handle)
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            try replace(url, with: tmp)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            if error is PruneError { throw error }
            throw PruneError(file: url, "write failed: \(error.localizedDescription)")
        }
    }

    /// Writes `data` atomically.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { try $0.write(contentsOf: data) }
    }

    /// A hidden name in the same directory (same file system, so rename is atomic).
    public static func temporarySibling(of url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))")
    }

    /// Moves `tmp` onto `url`, replacing what is there.
    public static func replace(_ url: URL, with tmp: URL) throws {
        if rename(tmp.path, url.path) != 0 {
            throw PruneError(file: url, "cannot rename temporary file into place (\(String(cString: strerror(errno))))")
        }
    }
}
