// Under mpirun a rank that fails must end the whole job: the other ranks would otherwise wait for it in their
// next collective for ever. `prune analyze` and `finetune` run their work through this.
import ArgumentParser
import Cluster
import Foundation
import Support

extension Communicator {
    /// Runs `body`, this rank's part of the job. With several ranks a failure is printed as one line naming the
    /// rank and ends the job (MPI_Abort); an `ExitCode` (130 after an interrupted run) ends it with that status.
    /// With one rank errors go to the caller unchanged.
    public func endingTheJobOnFailure(_ body: () throws -> Void) throws {
        guard size > 1 else { return try body() }
        do {
            try body()
        } catch let exit as ExitCode where exit != .success {
            abort(code: exit.rawValue)
        } catch {
            FileHandle.standardError.write(Data("error: rank \(rank): \((error as? PruneError)?.description ?? "\(error)")\n".utf8))
            abort(code: 1)
        }
    }
}
