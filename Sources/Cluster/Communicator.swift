// The processes of one job and the collective operations data parallelism needs: every rank runs the same
// program on its share of the data, and sums (allreduce), copies (broadcast) or waits (barrier) together.
// Under `mpirun` the ranks are OpenMPI's (libmpi is loaded at run time, see CMPI); a plain run is one rank
// of one, whose collectives do nothing. (The module is not called `Distributed`: Swift's toolchain ships one.)
import Foundation

/// The ranks of a job. Every rank must call the collectives in the same order with the same counts.
public protocol Communicator: AnyObject {
    /// This process, 0…size−1; rank 0 alone writes files and reports.
    var rank: Int { get }
    /// Processes in the job.
    var size: Int { get }
    /// Seconds spent inside collectives so far (the communication time of a step is a difference of two).
    var communicationSeconds: Double { get }
    /// Sums `count` floats over every rank, in place.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Sums `count` doubles over every rank, in place.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Sums `count` 64-bit integers over every rank, in place.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Int64>, count: Int)
    /// The maximum of `count` doubles over every rank, in place.
    func allreduceMax(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Copies `bytes` bytes of `root`'s buffer into every other rank's.
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int)
    /// Returns once every rank has called it.
    func barrier()
    /// Ends every rank of the job with `code` (after a rank failed: the others must not wait for it forever).
    func abort(code: Int32) -> Never
    /// Leaves the job (MPI_Finalize); no collective may follow.
    func finalize()
}

extension Communicator {
    /// Whether this rank writes files and reports.
    public var isRoot: Bool { rank == 0 }

    /// Sums an array over every rank.
    public func allreduceSum(_ values: [Double]) -> [Double] {
        var v = values
        v.withUnsafeMutableBufferPointer { if let p = $0.baseAddress { allreduceSum(p, count: $0.count) } }
        return v
    }

    /// Sums an array over every rank.
    public func allreduceSum(_ values: [Int]) -> [Int] {
        var v = values.map(Int64.init)
        v.withUnsafeMutableBufferPointer { if let p = $0.baseAddress { allreduceSum(p, count: $0.count) } }
        return v.map(Int.init)
    }

    /// `root`'s value of a Codable (as JSON) on every rank; `value` is only read on `root`.
    public func broadcast<T: Codable>(_ value: T?, root: Int = 0) throws -> T {
        guard size > 1 else {
            guard let value else { preconditionFailure("broadcast without a value on a single rank") }
            return value
        }
        var data = rank == root ? try JSONEncoder().encode(value!) : Data()
        var count = Int64(data.count)
        broadcast(&count, bytes: 8, root: root)
        if rank != root { data = Data(count: Int(count)) }
        data.withUnsafeMutableBytes { if let p = $0.baseAddress { broadcast(p, bytes: $0.count, root: root) } }
        return try JSONDecoder().decode(T.self, from: data)
    }
}

/// How this process was started, and the communicator that goes with it.
public enum Cluster {
    /// Whether a launcher (mpirun, or a PMI-based one) started this process as one rank of several: the
    /// environment says so before MPI is touched, so a plain run never loads libmpi.
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"].contains { env[$0] != nil }
    }

    /// Ranks of this job on this machine (OMPI_COMM_WORLD_LOCAL_SIZE; 1 outside mpirun): the default thread
    /// count of each is the machine's cores divided by it.
    public static var localRanks: Int {
        Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? 1
    }

    /// The job's communicator: OpenMPI's under mpirun (initialised here, once), else a single rank.
    /// Throws when launched by mpirun but libmpi cannot be loaded or initialised.
    public static func start() throws -> Communicator {
        guard launchedByMPI else { return SingleProcess() }
        return try MPICommunicator.shared()
    }

    /// Whether OpenMPI's library can be loaded on this machine (a plain run never needs it), or why not.
    public static var availability: Result<String, MPIUnavailable> { MPICommunicator.load() }
}

/// One rank of one: every collective leaves the data as it is.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var communicationSeconds: Double { 0 }
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Int64>, count: Int) {}
    public func allreduceMax(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {}
    public func barrier() {}
    public func abort(code: Int32) -> Never { exit(code) }
    public func finalize() {}
}
