// The statistics gathered per token position: the angular distances of every block (at every position,
// and at each sample's last one) and the Block Influence of every layer. Positions are independent, so
// the rows of a batch are split between the cores, each with its own sums, merged afterwards.
// Dimension glossary: L layers, S = L+1 hidden states, N rows (B·T).
import Tensor

/// Running sums over token positions for one worker.
final class PositionStatistics {
    private(set) var lastToken: AngularDistanceSums
    private(set) var allTokens: AngularDistanceSums
    private(set) var influence: BlockInfluenceSums
    private let cosines: HiddenStateCosines

    init(layerCount L: Int, width: Int) {
        lastToken = AngularDistanceSums(layerCount: L)
        allTokens = AngularDistanceSums(layerCount: L)
        influence = BlockInfluenceSums(layerCount: L)
        cosines = HiddenStateCosines(stateCount: L + 1, width: width)
    }

    /// Adds one position given its states (S, C); `isLast` marks a sample's last real token.
    func add(states: UnsafePointer<Float>, isLast: Bool) {
        cosines.compute(states)
        allTokens.add(cosines)
        influence.add(cosines)
        if isLast { lastToken.add(cosines) }
    }

    /// Adds the real rows of `batch` from `store`, split between `workers` (one per thread of `parallelism`).
    static func add(_ batch: CalibrationBatch, from store: HiddenStateStore, into workers: [PositionStatistics],
                    parallelism: Parallelism) {
        precondition(workers.count == parallelism.threads, "one PositionStatistics per thread")
        let rows = (0..<batch.rows).filter { batch.isReal(row: $0) }
        let lastRows = Set((0..<batch.batch).map { batch.lastRow(of: $0) })
        parallelism.workers(rows.count) { worker, range in
            for r in rows[range] { workers[worker].add(states: store.row(r), isLast: lastRows.contains(r)) }
        }
    }

    /// The sums of several workers together.
    static func merged(_ workers: [PositionStatistics])
        -> (lastToken: AngularDistanceSums, allTokens: AngularDistanceSums, influence: BlockInfluenceSums) {
        var last = workers[0].lastToken, all = workers[0].allTokens, influence = workers[0].influence
        for other in workers.dropFirst() {
            last.merge(other.lastToken)
            all.merge(other.allTokens)
            influence.merge(other.influence)
        }
        return (last, all, influence)
    }
}
