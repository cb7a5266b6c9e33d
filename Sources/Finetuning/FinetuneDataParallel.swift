// The data-parallel pieces of the finetuning loop (mpirun -np N finetune …). Every rank builds the same
// batcher over global micro-batches of N·B windows (the order one process with --batch-size N·B visits) and
// trains its slice [r·B, (r+1)·B) of each. The loss normaliser — the counted targets of the whole global
// step — is known to every rank without communication (each sees the whole global batch), so each rank's
// backward already scales by the global count; one MPI_Allreduce of the flat gradient buffer then gives
// every rank the single-process gradient, and the clipping norm, the NaN check and the AdamW step that follow
// are the same everywhere. A second, tiny allreduce carries the loss tally and the stop flag.
// Dimension glossary: N ranks, B windows per rank per micro-batch, T tokens per window.
import Cluster
import Data
import Foundation
import Llama
import Tensor
import Training

extension Finetuner {
    /// Rank `rank`'s windows [rank·B, (rank+1)·B) of a global micro-batch of N·B windows.
    static func shard(_ global: TrainingBatch, rank: Int, of size: Int) -> TrainingBatch {
        guard size > 1 else { return global }
        precondition(global.batch % size == 0, "global batch \(global.batch) not divisible by \(size) ranks")
        let B = global.batch / size
        return global.windows((rank * B)..<((rank + 1) * B))
    }

    /// Sums the flat gradients (one allreduce of every trainable scalar), the loss tally and the distillation's parts
    /// (when distilled) over the ranks.
    /// Returns whether any rank was asked to stop, and the gradient allreduce's shortest time over the ranks: the
    /// rank that arrives last waits for no one, so that is the transfer itself; the others add their wait for it.
    static func reduce(trainable: TrainableSet, tally: inout LossTally, parts: inout DistillationTally?, stop: Bool,
                       communicator comm: Communicator) -> (stop: Bool, transferSeconds: Double) {
        let before = comm.communicationSeconds
        comm.allreduceSum(trainable.gradients.data, count: trainable.gradients.count)
        let p = parts ?? DistillationTally()
        var mine = [tally.sum, Double(tally.count), stop ? 1 : 0, p.crossEntropy, p.divergence, p.hidden, Double(p.count)]
            + [Double](repeating: 0, count: comm.size)
        mine[7 + comm.rank] = comm.communicationSeconds - before
        let sums = comm.allreduceSum(mine)
        tally.sum = sums[0]
        tally.count = Int(sums[1])
        if var summed = parts {
            (summed.crossEntropy, summed.divergence, summed.hidden, summed.count) = (sums[3], sums[4], sums[5], Int(sums[6]))
            parts = summed
        }
        return (sums[2] > 0, sums[7...].min() ?? 0)
    }

    /// A loss tally summed over the ranks.
    static func reduced(_ tally: LossTally, communicator comm: Communicator) -> LossTally {
        let sums = comm.allreduceSum([tally.sum, Double(tally.count)])
        var t = LossTally()
        t.sum = sums[0]
        t.count = Int(sums[1])
        return t
    }

    /// Rank 0's starting point on every rank: the trainable values, AdamW's moments and step count, the batcher's
    /// position and the loop's `state` (rank 0 alone reads a checkpoint to resume from; a fresh start makes the
    /// same values everywhere, and copying them costs one broadcast). Returns rank 0's `state`.
    func synchronize(trainable: TrainableSet, optimizer: AdamW, batcher: TrainingBatcher, state: FinetuneState) throws -> FinetuneState {
        let comm = communicator
        struct Loop: Codable { var state: FinetuneState; var optimizerSteps: Int }
        let loop = try comm.broadcast(comm.isRoot ? Loop(state: state, optimizerSteps: optimizer.stepCount) : nil)
        comm.broadcast(trainable.values.data, bytes: trainable.values.count * 4, root: 0)
        let m = Tensor(zeros: [optimizer.firstMoments.count]), v = Tensor(zeros: [optimizer.secondMoments.count])
        m.data.update(from: optimizer.firstMoments.data, count: m.count)
        v.data.update(from: optimizer.secondMoments.data, count: v.count)
        comm.broadcast(m.data, bytes: m.count * 4, root: 0)
        comm.broadcast(v.data, bytes: v.count * 4, root: 0)
        optimizer.restore(stepCount: loop.optimizerSteps, firstMoments: m.data, secondMoments: v.data)
        try batcher.restore(loop.state.position)
        return loop.state
    }
}
