// The layers each strategy drops for a cut of n, from one analysis (angular distance, Block Influence) and, for
// `loss`, the calibration loss of every contiguous candidate (BlockRemovalScan). Layer 0 is never chosen unless
// the recipe allows it: cutting the first layer is catastrophic on every model measured (llama.cpp #3565).
import Analysis
import Foundation
import Support
import Surgery

/// One strategy's choice.
public struct LayerChoice: Codable, Equatable, Sendable {
    public var strategy: LayerStrategy
    /// 0-based, ascending.
    public var dropped: [Int]
    /// Why, in one line ("best block of 8 by last-token angular distance: 11-18 (d = 0.21)").
    public var reason: String

    /// "11-18" or "3,7-9".
    public var rangesText: String { LayerSelection(dropped).description }
    /// Whether the dropped layers form one block.
    public var isContiguous: Bool { dropped.count >= 1 && dropped.last! - dropped.first! + 1 == dropped.count }
}

/// Chooses the layers of a cut.
public enum LayerSelector {
    /// The layers `strategy` drops from a model of `layerCount` layers.
    /// - count: n (ignored by `layers`); explicit: `cut.layers` for `layers`; lossScan: needed by `loss`.
    public static func choose(_ strategy: LayerStrategy, count n: Int?, layerCount L: Int, analysis: LayerAnalysis?,
                              lossScan: BlockRemovalScan?, explicit: String?, allowFirstLayer: Bool, force: Bool = false) throws -> LayerChoice {
        let first = allowFirstLayer ? 0 : 1
        func need(_ n: Int?) throws -> Int {
            guard let n else { throw PruneError("cut.count", "strategy \(strategy.rawValue) needs the number of layers to drop") }
            try checkCount(n, layerCount: L, allowFirstLayer: allowFirstLayer)
            return n
        }
        switch strategy {
        case .layers:
            guard let explicit else { throw PruneError("cut.layers", "strategy layers needs cut.layers") }
            let layers = try LayerSelection(parsing: explicit, option: "cut.layers").layers
            if let bad = layers.first(where: { $0 >= L }) { throw PruneError("cut.layers", "layer \(bad) outside 0…\(L - 1)") }
            guard layers.count < L else { throw PruneError("cut.layers", "would drop every layer") }
            if !force, let why = CutDamageGuard.refusal(dropping: layers, layerCount: L) {
                throw PruneError("cut.layers", "\(explicit) \(why); set cut.force: true to cut anyway")
            }
            return LayerChoice(strategy: .layers, dropped: layers, reason: "given explicitly: \(LayerSelection(layers).description)")
        case .last:
            let n = try need(n)
            let layers = Array((L - 1 - n)..<(L - 1))
            return LayerChoice(strategy: .last, dropped: layers, reason: "the last \(n == 1 ? "layer" : "\(n) layers") before the final one: \(LayerSelection(layers).description)")
        case .angular:
            let n = try need(n)
            guard let analysis else { throw PruneError("angular", "needs the analysis") }
            guard let best = BlockRanking.ranked(analysis.angularDistance.lastToken, size: n).first(where: { $0.start >= first }) else {
                throw PruneError("cut.count", "the analysis has no block of \(Counted.noun(n, "layer"))")
            }
            return LayerChoice(strategy: .angular, dropped: best.layers, reason: String(
                format: "best block of %@ by last-token angular distance: %@ (d = %.4f)", Counted.noun(n, "layer"), LayerSelection(best.layers).description, best.distance))
        case .bi:
            let n = try need(n)
            guard let analysis else { throw PruneError("bi", "needs the analysis") }
            let bi = analysis.blockInfluence
            let order = bi.indices.filter { $0 >= first }.sorted { (bi[$0], $0) < (bi[$1], $1) }
            let layers = Array(order.prefix(n)).sorted()
            return LayerChoice(strategy: .bi, dropped: layers, reason: "the \(n == 1 ? "layer" : "\(n) layers") with the lowest Block Influence: \(LayerSelection(layers).description)")
        case .loss:
            let n = try need(n)
            guard let scan = lossScan, scan.size == n, let s = scan.best(firstStart: first) else {
                throw PruneError("loss", "needs the removal-loss scan of blocks of \(Counted.noun(n, "layer"))")
            }
            let layers = Array(s..<(s + n))
            return LayerChoice(strategy: .loss, dropped: layers, reason: String(
                format: "block of %@ with the lowest calibration loss when removed: %@ (loss %.4f, full model %.4f)",
                Counted.noun(n, "layer"), LayerSelection(layers).description, scan.losses[s], scan.fullLoss))
        }
    }

    /// Refuses a cut of `n` layers that no strategy can choose from `layerCount` (the last layer is always kept, and
    /// layer 0 unless allowed): checked before any stage runs, so that no scan is started for an impossible cut.
    public static func checkCount(_ n: Int, layerCount L: Int, allowFirstLayer: Bool) throws {
        let most = L - 1 - (allowFirstLayer ? 0 : 1)
        guard n >= 1, n <= most else {
            throw PruneError("cut.count", "\(Counted.noun(n, "layer")) cannot be dropped from a model of \(L) (at most \(max(most, 0)), "
                             + "keeping the last layer" + (allowFirstLayer ? ")" : " and layer 0)"))
        }
    }
}
