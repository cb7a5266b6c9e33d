// Splitting a loop between the cores for the kernels that OpenBLAS does not thread (LoRA-rank products,
// per-head attention GEMMs, per-row cross-entropy).
import Foundation

/// Runs a loop over items as a few contiguous ranges on concurrent threads.
enum WorkSplit {
    /// Threads used: the cores there are, at most 2 (what this project's machines have; more gains little on
    /// these memory-bound loops).
    static let workers = max(1, min(2, ProcessInfo.processInfo.activeProcessorCount))

    /// Calls `body` on `workers` disjoint ranges covering 0..<count, each starting at a multiple of `granularity`
    /// (so that vector loops stay aligned to their blocks). Runs inline as one range when each worker would get
    /// fewer than `minimumPerWorker` items: a thread hop costs more than such small work.
    static func ranges(_ count: Int, granularity: Int = 1, minimumPerWorker: Int = 16, _ body: (Range<Int>) -> Void) {
        let w = workers
        guard w > 1, count >= w * max(minimumPerWorker, granularity) else {
            if count > 0 { body(0..<count) }
            return
        }
        let blocks = (count + granularity - 1) / granularity
        DispatchQueue.concurrentPerform(iterations: w) { i in
            let lo = min(count, (blocks * i / w) * granularity)
            let hi = i == w - 1 ? count : min(count, (blocks * (i + 1) / w) * granularity)
            if lo < hi { body(lo..<hi) }
        }
    }
}
