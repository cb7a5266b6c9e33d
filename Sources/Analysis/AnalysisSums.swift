// Everything an analysis adds up, for one batch or for the whole run, and its flat form. Batches are folded
// into the total one at a time in batch order; under MPI each rank computes the batches b with
// b mod N = rank, the per-batch sums travel in one allreduce (a batch's slot holds its sums on the rank that
// computed it and zeros elsewhere, so the reduction adds only exact zeros), and every rank folds them in the
// same order: the result is bit for bit that of one process with the same --threads.
// Dimension glossary: L layers.
import Llama

/// The running sums of one analysis.
struct AnalysisSums {
    var loss = LossTally()
    var lastToken: AngularDistanceSums
    var allTokens: AngularDistanceSums
    var influence: BlockInfluenceSums
    var removal: RemovalScan?
    var earlyExit: EarlyExitScan?

    /// Empty sums of the scans `options` asks for.
    init(layerCount L: Int, options: AnalysisOptions) {
        lastToken = AngularDistanceSums(layerCount: L)
        allTokens = AngularDistanceSums(layerCount: L)
        influence = BlockInfluenceSums(layerCount: L)
        removal = options.removalScan ? RemovalScan(layerCount: L) : nil
        earlyExit = options.earlyExit ? EarlyExitScan(layerCount: L) : nil
    }

    /// Adds another batch's (or rank's) sums.
    mutating func merge(_ other: AnalysisSums) {
        loss.add(other.loss)
        lastToken.merge(other.lastToken)
        allTokens.merge(other.allTokens)
        influence.merge(other.influence)
        if let r = other.removal { removal?.merge(r) }
        if let e = other.earlyExit { earlyExit?.merge(e) }
    }

    /// Every sum and count as Doubles (counts stay exact below 2^53).
    var flattened: [Double] {
        [loss.sum, Double(loss.count)] + lastToken.flattened + allTokens.flattened + influence.flattened
            + (removal?.flattened ?? []) + (earlyExit?.flattened ?? [])
    }

    /// Reads back `flattened` of sums made with the same layer count and options.
    init(layerCount L: Int, options: AnalysisOptions, flattened f: ArraySlice<Double>) {
        var i = f.startIndex
        func take(_ n: Int) -> ArraySlice<Double> { defer { i += n }; return f[i..<(i + n)] }
        loss.sum = f[i]
        loss.count = Int(f[i + 1])
        i += 2
        let square = (L + 1) * (L + 1) + 1
        lastToken = AngularDistanceSums(layerCount: L, flattened: take(square))
        allTokens = AngularDistanceSums(layerCount: L, flattened: take(square))
        influence = BlockInfluenceSums(layerCount: L, flattened: take(L + 1))
        removal = options.removalScan ? RemovalScan(layerCount: L, flattened: take(2 * L)) : nil
        earlyExit = options.earlyExit ? EarlyExitScan(layerCount: L, flattened: take(3 * L + 1)) : nil
        precondition(i == f.endIndex, "flattened analysis sums of another shape")
    }
}
