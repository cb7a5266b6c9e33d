// Micro-batches of training windows in a seeded order: each epoch visits every window once in a
// permutation that depends only on (seed, epoch), so a position (epoch, micro-batches taken) saved in a
// checkpoint restores the exact sequence of batches. An epoch's last partial micro-batch is dropped (as
// PyTorch's drop_last), so every batch has the same shape. Each batch and each optimizer step (several
// micro-batches under gradient accumulation) reports how many targets count, the denominator of its loss.
// Dimension glossary: B windows per micro-batch, T tokens per window.
import Foundation
import Support

/// Where a batcher stands: the epoch (0-based) and the micro-batches already taken from it.
public struct BatchPosition: Codable, Equatable, Sendable {
    public var epoch: Int
    public var index: Int

    public init(epoch: Int = 0, index: Int = 0) {
        self.epoch = epoch
        self.index = index
    }
}

/// B windows as one row-major batch.
public struct TrainingBatch: Equatable, Sendable {
    /// B·T ids.
    public var tokens: [Int32]
    /// B·T labels, −100 where not counted.
    public var targets: [Int32]
    /// B.
    public var batch: Int
    /// T.
    public var length: Int
    /// Indices of the windows, in row order.
    public var windows: [Int]
    /// Where this batch was taken from.
    public var position: BatchPosition

    /// Labels that count.
    public var countedTargets: Int { targets.lazy.filter { $0 != TrainingWindow.ignoreIndex }.count }

    /// Windows `range` of this batch, rows in the same order (one rank's share of a data-parallel batch).
    public func windows(_ range: Range<Int>) -> TrainingBatch {
        precondition(range.lowerBound >= 0 && range.upperBound <= batch, "windows \(range) of a batch of \(batch)")
        let rows = (range.lowerBound * length)..<(range.upperBound * length)
        return TrainingBatch(tokens: Array(tokens[rows]), targets: Array(targets[rows]), batch: range.count, length: length,
                             windows: Array(windows[range]), position: position)
    }
}

/// The micro-batches of one optimizer step.
public struct TrainingStep: Equatable, Sendable {
    public var microBatches: [TrainingBatch]
    /// Labels that count over all micro-batches: the step's loss is their summed loss divided by this.
    public var countedTargets: Int { microBatches.reduce(0) { $0 + $1.countedTargets } }
}

/// Yields micro-batches of windows, epoch after epoch.
public final class TrainingBatcher {
    public let windows: [TrainingWindow]
    /// B.
    public let batchSize: Int
    /// Seed of the per-epoch permutations.
    public let seed: UInt64
    /// false keeps file order in every epoch.
    public let shuffles: Bool
    /// The next batch to take.
    public private(set) var position = BatchPosition()

    /// Throws when there are fewer windows than one batch or the windows differ in length.
    public init(windows: [TrainingWindow], batchSize: Int, seed: UInt64, shuffle: Bool = true) throws {
        guard batchSize >= 1 else { throw PruneError("--batch-size", "must be at least 1") }
        guard windows.count >= batchSize else {
            throw PruneError("--batch-size", "\(batchSize) windows per batch, but the training data gives only \(windows.count) (lower --batch-size or --context, or add data)")
        }
        guard let T = windows.first?.tokens.count, windows.allSatisfy({ $0.tokens.count == T && $0.targets.count == T }) else {
            throw PruneError("training data", "windows differ in length")
        }
        self.windows = windows
        self.batchSize = batchSize
        self.seed = seed
        self.shuffles = shuffle
    }

    /// Full micro-batches per epoch.
    public var batchesPerEpoch: Int { windows.count / batchSize }

    /// The order windows are visited in `epoch`: a Fisher–Yates shuffle drawn from (seed, epoch) alone.
    public func order(epoch: Int) -> [Int] {
        var order = Array(windows.indices)
        guard shuffles else { return order }
        var rng = SeededGenerator(seed: seed ^ (UInt64(epoch) &* 0xD1B5_4A32_D192_ED03))
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        return order
    }

    /// Continues from `position` (as saved from `position` of an identically built batcher).
    public func restore(_ position: BatchPosition) throws {
        guard position.epoch >= 0, position.index >= 0, position.index <= batchesPerEpoch else {
            throw PruneError("resume", "batch position epoch \(position.epoch), index \(position.index) is outside the data's \(batchesPerEpoch) batches per epoch")
        }
        self.position = position
    }

    /// The next micro-batch; after an epoch's last full batch the next epoch begins.
    public func next() -> TrainingBatch {
        if position.index >= batchesPerEpoch { position = BatchPosition(epoch: position.epoch + 1, index: 0) }
        let order = order(epoch: position.epoch)
        let picked = Array(order[position.index * batchSize ..< (position.index + 1) * batchSize])
        let batch = TrainingBatch(tokens: picked.flatMap { windows[$0].tokens }, targets: picked.flatMap { windows[$0].targets },
                                  batch: batchSize, length: windows[0].tokens.count, windows: picked, position: position)
        position.index += 1
        return batch
    }

    /// The next `microBatches` micro-batches (gradient accumulation) as one optimizer step.
    public func nextStep(microBatches: Int) -> TrainingStep {
        precondition(microBatches >= 1, "micro-batches per step \(microBatches)")
        return TrainingStep(microBatches: (0..<microBatches).map { _ in next() })
    }
}
