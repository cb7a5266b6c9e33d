// Decoding's parallel regions: ~200 per token, a few microseconds each, where waking threads through
// libdispatch (DispatchQueue.concurrentPerform) cost more than the halved work saved (measured: 2 threads slower
// than 1). A pool of spinning workers (CKernels pool.c) per thread count, made on first use and kept.
import CKernels
import Foundation

/// Runs `parts` pieces of work on a pool's threads, the caller taking the first.
public final class WorkerPool: @unchecked Sendable {
    private let pool: OpaquePointer
    /// Threads, the caller included.
    public let threads: Int

    private init(threads: Int) {
        self.threads = threads
        pool = pk_pool_create(Int32(threads))
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var pools: [Int: WorkerPool] = [:]

    /// The pool for `parallelism.threads` threads (one per count for the process).
    public static func shared(_ parallelism: Parallelism) -> WorkerPool {
        lock.lock()
        defer { lock.unlock() }
        if let p = pools[parallelism.threads] { return p }
        let p = WorkerPool(threads: parallelism.threads)
        pools[parallelism.threads] = p
        return p
    }

    /// body(chunk) for chunk in 0..<chunks, each once, on the pool's threads, each taking the next chunk as it
    /// finishes one (balances threads that run at different speeds); returns when all are done.
    public func run(chunks: Int, _ body: (Int) -> Void) {
        precondition(chunks >= 0, "\(chunks) chunks")
        if chunks == 0 { return }
        if threads == 1 || chunks == 1 { for c in 0..<chunks { body(c) }; return }
        handing(body) { pk_pool_run_chunks(pool, Int32(chunks), $0, $1) }
    }

    /// body(part) for part in 0..<parts (at most `threads`), concurrently; returns when all are done.
    public func run(parts: Int, _ body: (Int) -> Void) {
        precondition(parts >= 0 && parts <= threads, "\(parts) parts on a pool of \(threads) threads")
        if parts <= 1 { if parts == 1 { body(0) }; return }
        handing(body) { pk_pool_run(pool, Int32(parts), $0, $1) }
    }

    /// Calls `run` with a C task and the context that call `body(index)`: the one bridge from a Swift closure to the
    /// pool's function pointers.
    private func handing(_ body: (Int) -> Void, to run: (pk_pool_task, UnsafeMutableRawPointer) -> Void) {
        withoutActuallyEscaping(body) { escaping in
            var task = escaping
            withUnsafeMutablePointer(to: &task) { context in
                run({ raw, index in
                    guard let raw else { return }
                    raw.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(index))
                }, context)
            }
        }
    }
}

/// The read bandwidth a streaming read reaches on this machine.
public enum ReadBandwidth {
    /// Bytes per second of the best of `passes` reads of a `bytes` buffer, split over the threads of `parallelism` as
    /// decoding splits a weight: main memory's rate for a buffer larger than the last-level cache (the default,
    /// 1 GiB), that cache's for one that fits, read again and again as decoding reads its weights.
    public static func measure(bytes: Int = 1 << 30, passes: Int = 3, parallelism: Parallelism) -> Double {
        let count = max(1, bytes / 4)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        for i in 0..<count { buffer[i] = Float(i & 1023) * 0x1p-10 }   // touch every page first; ordinary floats
        let pool = WorkerPool.shared(parallelism), parts = parallelism.threads
        var best = 0.0
        var sink: Float = 0
        for _ in 0..<passes {
            let start = DispatchTime.now().uptimeNanoseconds
            withUnsafeTemporaryAllocation(of: Float.self, capacity: parts) { sums in
                pool.run(parts: parts) { w in
                    let lo = count * w / parts, hi = count * (w + 1) / parts
                    sums[w] = pk_stream_read(buffer + lo, hi - lo)
                }
                for w in 0..<parts { sink += sums[w] }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = max(best, Double(count * 4) / seconds)
        }
        withExtendedLifetime(sink) {}
        return best
    }
}
