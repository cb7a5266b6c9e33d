// How many threads a computation may use: one value, chosen once (from --threads) and passed to whatever
// runs in parallel. There is no process-wide thread setting to save, set and restore.
import Foundation

/// A thread count, and the two ways our loops split work over it.
public struct Parallelism: Sendable, Equatable, CustomStringConvertible {
    /// Threads, at least 1.
    public let threads: Int

    public init(threads: Int) {
        precondition(threads >= 1, "threads must be at least 1, got \(threads)")
        self.threads = threads
    }

    /// One thread: for work that already runs on one of several threads.
    public static let serial = Parallelism(threads: 1)

    /// Every core of this machine.
    public static var allCores: Parallelism { Parallelism(threads: max(1, ProcessInfo.processInfo.activeProcessorCount)) }

    public var description: String { "\(threads) thread\(threads == 1 ? "" : "s")" }

    /// Calls `body` on up to `threads` disjoint ranges covering 0..<count, concurrently, each starting at a
    /// multiple of `granularity` (vector loops stay aligned to their blocks). Runs inline as one range when a
    /// thread would get fewer than `minimumPerWorker` items: a thread hop costs more than such small work.
    public func ranges(_ count: Int, granularity: Int = 1, minimumPerWorker: Int = 16, _ body: (Range<Int>) -> Void) {
        let w = threads
        guard w > 1, count >= 2 * max(minimumPerWorker, granularity) else {
            if count > 0 { body(0..<count) }
            return
        }
        let parts = min(w, count / max(minimumPerWorker, granularity))
        let blocks = (count + granularity - 1) / granularity
        DispatchQueue.concurrentPerform(iterations: parts) { i in
            let lo = min(count, (blocks * i / parts) * granularity)
            let hi = i == parts - 1 ? count : min(count, (blocks * (i + 1) / parts) * granularity)
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Calls `body(worker, range)` for exactly `threads` disjoint ranges covering 0..<count (some may be
    /// empty), concurrently: for loops that keep one accumulator per worker.
    public func workers(_ count: Int, _ body: (Int, Range<Int>) -> Void) {
        let w = threads
        guard w > 1 else { return body(0, 0..<count) }
        DispatchQueue.concurrentPerform(iterations: w) { i in body(i, (count * i / w)..<(count * (i + 1) / w)) }
    }
}
