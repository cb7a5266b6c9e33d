// The single-rank communicator leaves data as it is, a plain process never counts as launched by MPI, and
// the run-time loader either finds OpenMPI or says why not (the multi-rank behaviour is tested through
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

    func testTheLoaderFindsOpenMPIOrSaysWhyNot() throws {
        switch Cluster.availability {
        case .success(let library):
            XCTAssertTrue(library.contains("libmpi"), library)
            XCTAssertTrue(library.contains("Open MPI"), library)
        case .failure(let why):
            XCTAssertTrue(why.description.contains("OpenMPI could not be loaded"), why.description)
            print("note: OpenMPI is not installed here: \(why)")
        }
    }
}
