// Independent rows (token positions) split between the cores for the per-row loops of the analysis
// that OpenBLAS does not thread: the Gram matrices of the hidden states and the early-exit losses.
import Foundation
import Tensor

/// Runs a loop over rows as contiguous ranges on concurrent threads.
enum RowSplit {
    /// The cores there are, at most 2 (what this project's machines have).
    static let workers = max(1, min(2, ProcessInfo.processInfo.activeProcessorCount))

    /// Calls `body(worker, range)` for `workers` disjoint ranges covering 0..<count, concurrently.
    /// OpenBLAS runs one thread per worker meanwhile: two workers each calling a threaded OpenBLAS on
    /// small products would only contend.
    static func run(_ count: Int, _ body: (Int, Range<Int>) -> Void) {
        let w = workers
        guard w > 1 else { return body(0, 0..<count) }
        Gemm.singleThreaded {
            DispatchQueue.concurrentPerform(iterations: w) { i in body(i, (count * i / w)..<(count * (i + 1) / w)) }
        }
    }
}
