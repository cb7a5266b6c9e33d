// Every output is written under a temporary name beside its target and renamed at the end, so that a
// failure midway never leaves a half-written file where a complete one is expected (directories: AtomicDirectory). Temporaries are
// registered with Interruption (removed on SIGINT/SIGTERM); those a kill -9 left behind are removed by
// the next write beside them.
import Foundation

/// Atomic file creation by temporary name + rename, and the temporary names every atomic output uses.
public enum AtomicFile {
    /// Creates `url` through a FileHandle on a temporary sibling; renames on success, deletes on failure.
    /// `durable` flushes the file to disk before the rename (checkpoints that must survive a crash).
    public static func write(to url: URL, durable: Bool = false, _ body: (FileHandle) throws -> Void) throws {
        removeStaleTemporaries(of: url)
        let tmp = temporarySibling(of: url)
        let token = Interruption.register(tmp)
        defer { Interruption.release(token) }
        // Created under the interruption lock: a signal's cleanup then sees the file, or runs before it exists
        // and ends the process before it is made (never removes nothing and exits after it was created).
        guard Interruption.publishing({ FileManager.default.createFile(atPath: tmp.path, contents: nil) }) else {
            throw PruneError(file: url, "cannot create file (does the directory exist and is it writable?)")
        }
        do {
            let handle = try FileHandle(forWritingTo: tmp)
            do {
                try body(handle)
                if durable { try handle.synchronize() }
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            try Interruption.publishing { try replace(url, with: tmp); Interruption.release(token) }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            if error is PruneError { throw error }
            throw PruneError(file: url, "write failed: \(error.localizedDescription)")
        }
    }

    /// Writes `data` atomically.
    public static func write(_ data: Data, to url: URL, durable: Bool = false) throws {
        try write(to: url, durable: durable) { try $0.write(contentsOf: data) }
    }

    /// Creates the registered temporary directory `tmp` under the interruption lock, as `write` creates its file:
    /// a signal's cleanup then sees it, or runs before it exists and ends the process before it is made.
    public static func createTemporaryDirectory(_ tmp: URL) throws {
        try Interruption.publishing { try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: false) }
    }

    /// fsync on a directory, so that the names in it (a rename) are on disk.
    public static func syncDirectory(_ url: URL) {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// A hidden name in the same directory (same file system, so rename is atomic):
    /// ".NAME.tmp-PID-XXXXXXXX", never taken for NAME itself.
    public static func temporarySibling(of url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))")
    }

    /// The process id in a temporary name of `url`'s, or nil when `name` is not one.
    public static func temporaryOwner(_ name: String, of url: URL) -> pid_t? {
        let prefix = ".\(url.lastPathComponent).tmp-"
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count).split(separator: "-", maxSplits: 1)
        guard rest.count == 2, rest[1].count == 8, let pid = pid_t(rest[0]), pid > 0 else { return nil }
        return pid
    }

    /// Removes the temporaries of `url` left by processes that no longer run (a kill -9, a power cut):
    /// they are never complete outputs. Temporaries of running processes (another run writing the same
    /// output) are left alone. Returns the names removed.
    @discardableResult
    public static func removeStaleTemporaries(of url: URL) -> [String] {
        let parent = url.deletingLastPathComponent()
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent.path) else { return [] }
        var removed: [String] = []
        for name in names.sorted() {
            guard let pid = temporaryOwner(name, of: url), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            if (try? FileManager.default.removeItem(at: parent.appendingPathComponent(name))) != nil { removed.append(name) }
        }
        return removed
    }

    /// Moves `tmp` onto `url`, replacing what is there.
    public static func replace(_ url: URL, with tmp: URL) throws {
        if rename(tmp.path, url.path) != 0 {
            throw PruneError(file: url, "cannot rename temporary file into place (\(String(cString: strerror(errno))))")
        }
    }
}
