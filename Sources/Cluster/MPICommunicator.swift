// OpenMPI's MPI_COMM_WORLD through the run-time loader (CMPI). MPI's default error handler on
// MPI_COMM_WORLD is MPI_ERRORS_ARE_FATAL: a failed collective (a peer that died, a broken connection)
// ends the job rather than returning, so the collectives here have no error path to report.
import CMPI
import Foundation

/// Why MPI cannot be used on this machine.
public struct MPIUnavailable: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// MPI_COMM_WORLD of an OpenMPI job.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public private(set) var communicationSeconds = 0.0
    private var finalized = false

    private init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
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
        let rc = body()
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
        pk_mpi_abort(code)
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
