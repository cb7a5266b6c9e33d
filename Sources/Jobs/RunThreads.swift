// The threads a run uses: --threads as given, else the cores shared between the mpirun ranks on this machine.
// One check of a thread count for every command that takes one (prune's model commands, bench, finetune).
import Cluster
import Support
import Tensor

extension Parallelism {
    /// Refuses a thread count below 1, naming --threads.
    public static func check(threads: Int?) throws {
        if let threads, threads < 1 { throw PruneError("--threads", "must be at least 1, got \(threads)") }
    }

    /// `threads` when given (checked by `check(threads:)`), else the cores divided by the mpirun ranks on this
    /// machine (all of them without mpirun).
    public static func forRun(threads: Int?) -> Parallelism {
        Parallelism(threads: max(1, threads ?? Parallelism.allCores.threads / Cluster.localRanks))
    }
}
