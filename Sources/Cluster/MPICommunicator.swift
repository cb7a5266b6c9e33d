// OpenMPI's MPI_COMM_WORLD through the run-time loader (CMPI). MPI's default error handler on
// MPI_COMM_WORLD is MPI_ERRORS_ARE_FATAL: a failed collective (a peer that died, a broken connection)
// ends the job rather than returning, so the collectives here have no error path to report. A peer that
// hangs instead of dying (stopped, swapping, deadlocked) is what the watchdog is for: a collective that has
// not returned after PRUNE_MPI_TIMEOUT seconds (default 1800; 0 = never) ends this process, and mpirun,
// seeing a rank exit with a failure, ends the rest of the job.
import CMPI
import Foundation

/// Why MPI cannot be used on this machine.
public struct MPIUnavailable: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// MPI_COMM_WORLD of an OpenMPI job.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public private(set) var communicationSeconds = 0.0
    private var finalized = false
    /// Seconds a collective may take before the watchdog ends the process (nil: no watchdog).
    public let timeout: Double?
    private let watch = NSLock()
    private var inCollectiveSince: Double?   // pk_mpi_wtime() at entry; guarded by `watch`
    private var inCollective = ""

    private init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
        let seconds = ProcessInfo.processInfo.environment["PRUNE_MPI_TIMEOUT"].flatMap(Double.init) ?? Self.defaultTimeout
        timeout = seconds > 0 ? seconds : nil
        if timeout != nil { startWatchdog() }
    }

    /// The watchdog's default limit on one collective: long enough for rank 0 to write a checkpoint of a large
    /// model while the others wait for it in the next step's allreduce.
    public static let defaultTimeout = 1800.0

    private func startWatchdog() {
        let thread = Thread { [unowned self] in
            while true {
                sleep(1)
                watch.lock()
                let since = inCollectiveSince, what = inCollective
                watch.unlock()
                guard let since, let timeout, pk_mpi_wtime() - since > timeout else { continue }
                FileHandle.standardError.write(Data(("error: rank \(rank): \(what) has waited \(Int(timeout)) s for the other ranks "
                    + "(PRUNE_MPI_TIMEOUT); one of them hangs. Ending the job; the last checkpoint resumes.\n").utf8))
                _exit(75)   // not exit(): MPI's atexit handlers would wait for the hung peer too
            }
        }
        thread.name = "MPI watchdog"
        thread.start()
    }

    /// Loads libmpi (once): the library and its version, or why it cannot be loaded.
    static func load() -> Result<String, MPIUnavailable> {
        let info = pk_mpi_load()!.pointee
        guard info.loaded != 0 else { return .failure(MPIUnavailable(description: string(info.error))) }
        return .success("\(string(info.library)) (\(string(info.version)))")
    }

    private static let initialised: Result<MPICommunicator, MPIUnavailable> = {
        if case .failure(let e) = load() { return .failure(e) }
        var rank: Int32 = 0, size: Int32 = 0
        let rc = pk_mpi_init(&rank, &size)
        guard rc == 0 else { return .failure(MPIUnavailable(description: "MPI_Init_thread failed (error \(rc))")) }
        return .success(MPICommunicator(rank: Int(rank), size: Int(size)))
    }()

    /// The job's communicator, MPI initialised on first use.
    public static func shared() throws -> MPICommunicator { try initialised.get() }

    private func timed(_ what: String, _ body: () -> Int32) {
        let start = pk_mpi_wtime()
        watch.lock(); inCollectiveSince = start; inCollective = what; watch.unlock()
        let rc = body()
        watch.lock(); inCollectiveSince = nil; watch.unlock()
        communicationSeconds += pk_mpi_wtime() - start
        if rc != 0 {   // only reached if someone replaced the fatal error handler
            FileHandle.standardError.write(Data("error: rank \(rank): \(what) failed (MPI error \(rc)); ending the job\n".utf8))
            abort(code: 1)
        }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        timed("MPI_Allreduce") { pk_mpi_allreduce_sum_float(buffer, count) }
    }
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        timed("MPI_Allreduce") { pk_mpi_allreduce_sum_double(buffer, count) }
    }
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Int64>, count: Int) {
        buffer.withMemoryRebound(to: CLongLong.self, capacity: count) { p in
            timed("MPI_Allreduce") { pk_mpi_allreduce_sum_int64(p, count) }
        }
    }
    public func allreduceMax(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        timed("MPI_Allreduce") { pk_mpi_allreduce_max_double(buffer, count) }
    }
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
        timed("MPI_Bcast") { pk_mpi_broadcast(buffer, bytes, Int32(root)) }
    }
    public func barrier() { timed("MPI_Barrier") { pk_mpi_barrier() } }

    public func abort(code: Int32) -> Never {
        if !finalized { pk_mpi_abort(code) }
        exit(code)   // MPI_Abort does not return; this satisfies the type checker
    }

    public func finalize() {
        guard !finalized else { return }
        finalized = true
        _ = pk_mpi_finalize()
    }

    private static func string<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
