// The single-rank communicator leaves data as it is, a plain process never counts as launched by MPI, and
// the run-time loader finds OpenMPI where it is installed and says why not elsewhere (the multi-rank behaviour is tested through
// mpirun in CLITests/MPICommandTests).
import Cluster
import Foundation
import XCTest

final class CommunicatorTests: XCTestCase {
    func testASingleProcessIsRankZeroOfOneAndItsCollectivesChangeNothing() throws {
        let comm = SingleProcess()
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.size, 1)
        XCTAssertTrue(comm.isRoot)
        XCTAssertEqual(comm.allreduceSum([1.5, -2]), [1.5, -2])
        XCTAssertEqual(comm.allreduceSum([3, 4]), [3, 4])
        var floats: [Float] = [1, 2, 3]
        comm.allreduceSum(&floats, count: 3)
        XCTAssertEqual(floats, [1, 2, 3])
        struct Value: Codable, Equatable { var step: Int; var name: String }
        XCTAssertEqual(try comm.broadcast(Value(step: 3, name: "x")), Value(step: 3, name: "x"))
        comm.barrier()
        XCTAssertEqual(comm.communicationSeconds, 0)
    }

    func testAPlainProcessIsNotAnMPIRankAndGetsTheSingleProcessCommunicator() throws {
        guard !Cluster.launchedByMPI else { throw XCTSkip("this test process runs under mpirun") }
        XCTAssertTrue(try Cluster.start() is SingleProcess)
    }

    /// The loader finds OpenMPI exactly when the dynamic linker knows a libmpi.so (asked independently, through
    /// ldconfig's cache), and otherwise says why not.
    func testTheLoaderFindsOpenMPIWhereItIsInstalledAndSaysWhyNotElsewhere() throws {
        let ldconfig = ["/sbin/ldconfig", "/usr/sbin/ldconfig"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let process = Process(), pipe = Pipe()
        process.standardOutput = pipe
        guard let ldconfig else { throw XCTSkip("no ldconfig to ask where libmpi is") }
        process.executableURL = URL(fileURLWithPath: ldconfig)
        process.arguments = ["-p"]
        try process.run()
        let listing = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw XCTSkip("ldconfig -p failed") }
        let installed = listing.split(separator: "\n").contains { $0.contains("libmpi.so.40 ") || $0.contains("libmpi.so ") }
        switch Cluster.availability {
        case .success(let library):
            XCTAssertTrue(installed, "loaded \(library), but ldconfig lists no libmpi.so")
            XCTAssertTrue(library.contains("libmpi"), library)
            XCTAssertTrue(library.contains("Open MPI"), library)
        case .failure(let why):
            XCTAssertFalse(installed, "ldconfig lists libmpi.so, but the loader says: \(why)")
            XCTAssertTrue(why.description.contains("OpenMPI could not be loaded"), why.description)
            print("note: OpenMPI is not installed here: \(why)")
        }
    }
}
