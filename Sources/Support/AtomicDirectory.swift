// The one way a directory output is published (checkpoints, analyses, training checkpoints, a study's final
// model): built in a hidden temporary sibling registered with Interruption (removed on SIGINT/SIGTERM; one a
// kill -9 left is swept by the next write beside it), renamed into place under the interruption lock, and an
// old directory at the same path kept until the new one is complete — moved aside, put back if the rename
// fails, removed only after.
import Foundation

/// Directory outputs made whole or not at all.
public enum AtomicDirectory {
    /// Builds `url` with `body` (given the temporary directory to fill), then renames it into place. An existing
    /// `url` is refused unless `replacing`, and then stays until the new directory is in place. `durable` flushes
    /// the directory entries before and after the rename. A failure leaves `url` as it was and no temporary.
    public static func write(_ url: URL, replacing: Bool, durable: Bool = false, _ body: (URL) throws -> Void) throws {
        let fm = FileManager.default
        if !replacing && fm.fileExists(atPath: url.path) { throw PruneError(file: url, "already exists") }
        let parent = url.deletingLastPathComponent()
        do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw PruneError(file: parent, "cannot create the directory: \(error.localizedDescription)")
        }
        AtomicFile.removeStaleTemporaries(of: url)
        let tmp = AtomicFile.temporarySibling(of: url)
        let token = Interruption.register(tmp)
        defer { Interruption.release(token) }
        do {
            try AtomicFile.createTemporaryDirectory(tmp)
            try body(tmp)
            if durable { AtomicFile.syncDirectory(tmp) }
            // Where the old directory goes, registered before it is there (the registry's lock is the one
            // `publishing` holds): a signal lands before the renames (the old directory intact, nothing aside) or
            // after them, and then removes the old directory from aside.
            let aside = AtomicFile.temporarySibling(of: url)
            let asideToken = Interruption.register(aside)
            defer { Interruption.release(asideToken) }
            try Interruption.publishing {
                if fm.fileExists(atPath: url.path) {
                    guard replacing else { throw PruneError(file: url, "already exists") }
                    if rename(url.path, aside.path) != 0 {
                        throw PruneError(file: url, "cannot move the old directory aside (\(String(cString: strerror(errno))))")
                    }
                    do { try AtomicFile.replace(url, with: tmp) } catch {
                        try? AtomicFile.replace(url, with: aside)
                        throw error
                    }
                } else {
                    try AtomicFile.replace(url, with: tmp)
                }
                Interruption.release(token)
            }
            if durable { AtomicFile.syncDirectory(parent) }
            // A leftover of a kill -9 here carries a temporary name and is removed by the next write.
            if fm.fileExists(atPath: aside.path) { _ = try? fm.removeItem(at: aside) }
        } catch {
            try? fm.removeItem(at: tmp)
            if error is PruneError { throw error }
            throw PruneError(file: url, "write failed: \(error.localizedDescription)")
        }
    }

    /// Copies every entry of `source` but those named in `except` into `directory` (a temporary being filled).
    public static func copyContents(of source: URL, into directory: URL, except: Set<String> = []) throws {
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: source.path) where !except.contains(name) {
            try fm.copyItem(at: source.appendingPathComponent(name), to: directory.appendingPathComponent(name))
        }
    }
}
