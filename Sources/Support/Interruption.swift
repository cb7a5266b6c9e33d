// What happens when a run is interrupted. SIGINT (Ctrl-C) and SIGTERM (a scheduler's stop) end the
// process with exit status 128 + signal (130, 143) after removing every temporary output it registered,
// so an interrupted cut, merge or analysis leaves nothing half-written. A kill -9 cannot be caught: its
// leftovers carry temporary names (AtomicFile.temporarySibling), which are never read as results and
// which the next write beside them removes (AtomicFile.removeStaleTemporaries).
//
// The signal handler itself only writes the signal number into a pipe (all a handler may safely do); a
// watcher thread reads it, takes the registry lock, removes the registered paths, prints one line and
// exits. Renames that publish a finished output run under the same lock (`publishing`), so an interrupt
// lands either before a rename (the temporary is removed, the output absent or the old one intact) or
// after it (the output complete), never in between.
//
// A long job with state worth keeping (training) runs its loop inside `deferring`: a first signal is then
// only recorded (`pendingSignal`), the loop stops at its next safe point, saves, and calls `exit(for:)`;
// a second signal acts at once.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Cleanup of temporary outputs on SIGINT / SIGTERM.
public enum Interruption {
    /// A registered temporary path; pass it back to `release`.
    public struct Token: Hashable, Sendable {
        let id: Int
    }

    /// The exit status of a process ended by `signal` (128 + signal number, as shells report it).
    public static func exitStatus(for signal: Int32) -> Int32 { 128 + signal }

    /// Installs the SIGINT and SIGTERM handlers (once per process; later calls do nothing). Until it is
    /// called, registering paths is harmless and signals keep their default action.
    public static func install() {
        registry.lock.lock()
        defer { registry.lock.unlock() }
        guard !registry.installed else { return }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        registry.installed = true
        signalPipe.pointee = fds[1]
        let readEnd = fds[0]
        let watcher = Thread {
            var byte: UInt8 = 0
            while true {
                guard read(readEnd, &byte, 1) == 1 else { continue }
                let signal = Int32(byte)
                registry.lock.lock()
                let deferred = registry.deferring > 0 && registry.pending == nil
                if deferred { registry.pending = signal }
                registry.lock.unlock()
                if !deferred { Interruption.finish(signal: signal) }
            }
        }
        watcher.name = "prune-interruption"
        watcher.start()
        for sig in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                var byte = UInt8(truncatingIfNeeded: sig)
                _ = write(signalPipe.pointee, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
    }

    /// Registers `url` (a file or directory that may not exist yet) to be removed if the process is
    /// interrupted before `release` is called.
    public static func register(_ url: URL) -> Token {
        registry.lock.lock()
        defer { registry.lock.unlock() }
        registry.next += 1
        registry.paths[registry.next] = url
        return Token(id: registry.next)
    }

    /// Stops removing the path of `token` on interruption (it was renamed into place or removed).
    public static func release(_ token: Token) {
        registry.lock.lock()
        defer { registry.lock.unlock() }
        registry.paths[token.id] = nil
    }

    /// Runs `body` with `url` registered as a temporary output, released when `body` returns or throws.
    public static func whileTemporary<T>(_ url: URL, _ body: () throws -> T) rethrows -> T {
        let token = register(url)
        defer { release(token) }
        return try body()
    }

    /// Runs `body` (the renames that publish an output, and the release of its temporaries; the creation of a
    /// registered temporary) so that an interruption waits until it is done: the output is then either not yet
    /// published or complete, and a temporary either not yet made or seen by the cleanup.
    public static func publishing<T>(_ body: () throws -> T) rethrows -> T {
        registry.lock.lock()
        defer { registry.lock.unlock() }
        return try body()
    }

    /// Runs `body` with SIGINT/SIGTERM deferred: the first signal is recorded in `pendingSignal` (for `body`
    /// to poll and stop at a safe point) instead of ending the process; a second one ends it at once.
    /// Returns `body`'s result and the deferred signal, if one came: the caller saves what it must and then
    /// calls `exit(for:)`, which removes the temporaries and exits 128 + signal.
    public static func deferring<T>(_ body: () throws -> T) rethrows -> (result: T, signal: Int32?) {
        registry.lock.lock()
        registry.deferring += 1
        registry.lock.unlock()
        defer {
            registry.lock.lock()
            registry.deferring -= 1
            registry.lock.unlock()
        }
        let result = try body()
        return (result, pendingSignal)
    }

    /// The signal a `deferring` body has been asked to stop for, if any.
    public static var pendingSignal: Int32? {
        registry.lock.lock()
        defer { registry.lock.unlock() }
        return registry.pending
    }

    /// Ends the process as an interruption by `signal` does: temporaries removed, one line, 128 + signal.
    public static func exit(for signal: Int32) -> Never { finish(signal: signal) }

    /// Paths currently registered (for tests and diagnostics).
    public static var registeredPaths: [URL] {
        registry.lock.lock()
        defer { registry.lock.unlock() }
        return registry.paths.sorted { $0.key < $1.key }.map(\.value)
    }

    /// On the watcher thread: removes every registered path and exits with 128 + signal. The lock is kept,
    /// so no output is published after this point.
    static func finish(signal: Int32) -> Never {
        registry.lock.lock()
        let paths = registry.paths.values.sorted { $0.path.count > $1.path.count }
        // The other threads run on while this one removes: one may still be creating a file in a temporary
        // directory, and the directory then survives its removal (not empty). Remove until it is gone; writers
        // stop at the latest when they try to publish (the lock is held).
        for url in paths {
            for _ in 0..<200 where FileManager.default.fileExists(atPath: url.path) {
                try? FileManager.default.removeItem(at: url)
                if FileManager.default.fileExists(atPath: url.path) { usleep(1000) }
            }
        }
        let name = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
        let removed = paths.isEmpty ? "" : "; removed \(paths.count) temporary output\(paths.count == 1 ? "" : "s")"
        FileHandle.standardError.write(Data("error: interrupted by \(name)\(removed)\n".utf8))
        _exit(exitStatus(for: signal))
    }

    /// The registered paths and the install flag, behind one lock (recursive: `publishing` bodies release
    /// tokens).
    final class Registry: @unchecked Sendable {
        let lock = NSRecursiveLock()
        var paths: [Int: URL] = [:]
        var next = 0
        var installed = false
        /// Depth of `deferring` calls, and the signal recorded during them.
        var deferring = 0
        var pending: Int32?
    }

    static let registry = Registry()
}

/// The write end of the signal pipe, read by the signal handler (which may touch nothing else).
private let signalPipe: UnsafeMutablePointer<Int32> = {
    let p = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    p.initialize(to: -1)
    return p
}()
