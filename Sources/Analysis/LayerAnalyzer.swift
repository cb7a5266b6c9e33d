// One pass over the calibration batches: each batch runs the full model once, its hidden states h_0…h_L
// are copied into one reused buffer as they appear, and every statistic is folded into Double running
// sums before the next batch, so memory holds one batch's states whatever the number of samples. The
// optional removal scan and early exit reuse the same stored states.
// Dimension glossary: B batch, T tokens, N = B·T rows, C model dim, V vocab, L layers.
import Cluster
import Foundation
import Llama
import Reports
import Tensor

/// What to measure beyond the angular distances, Block Influence and full loss.
public struct AnalysisOptions: Sendable {
    /// Sequences per forward pass.
    public var batchSize = 4
    /// Block sizes n to rank (default 1…L−1, every cut that leaves a layer).
    public var blockSizes: [Int]?
    /// Also measure the loss with each layer removed (L more partial passes per batch).
    public var removalScan = false
    /// Also measure each h_l through the final norm and lm_head (L more lm_head products per batch).
    public var earlyExit = false

    public init(batchSize: Int = 4, blockSizes: [Int]? = nil, removalScan: Bool = false, earlyExit: Bool = false) {
        self.batchSize = batchSize
        self.blockSizes = blockSizes
        self.removalScan = removalScan
        self.earlyExit = earlyExit
    }
}

/// Where the samples came from, recorded in the results.
public struct AnalysisSource: Sendable {
    /// The checkpoint directory.
    public var model: String
    /// The dataset file, if any.
    public var dataset: String?
    /// The most tokens per sample that was asked for.
    public var context: Int

    public init(model: String, dataset: String?, context: Int) {
        self.model = model
        self.dataset = dataset
        self.context = context
    }
}

/// Measures how much each layer and each block of consecutive layers changes the residual stream.
public final class LayerAnalyzer {
    public let model: LlamaModel
    public let options: AnalysisOptions

    public init(model: LlamaModel, options: AnalysisOptions = AnalysisOptions()) {
        self.model = model
        self.options = options
    }

    /// L
    public var layerCount: Int { model.config.numHiddenLayers }

    /// The batches `samples` are analysed in and what each phase will cost.
    public func plan(samples: [[Int32]]) -> AnalysisPlan {
        AnalysisPlan(config: model.config, batches: CalibrationBatch.batches(samples, batchSize: options.batchSize), options: options)
    }

    /// Analyses `samples` (each at least one token); `progress` (made from `plan(samples:)`) hears of
    /// every layer of every phase. Under MPI (`communicator` of N ranks) every rank passes the same samples,
    /// rank r analyses batches r, r+N, … and every rank returns the result one process would (AnalysisSums).
    public func analyze(samples: [[Int32]], source: AnalysisSource, progress: AnalysisProgress? = nil,
                        communicator comm: Communicator = SingleProcess()) -> LayerAnalysis {
        precondition(!samples.isEmpty, "no samples to analyse")
        let L = layerCount, V = model.config.vocabSize, C = model.config.hiddenSize
        let batches = CalibrationBatch.batches(samples, batchSize: options.batchSize)
        let store = HiddenStateStore(stateCount: L + 1, width: C)
        store.reserve(rows: batches.map(\.rows).max()!)
        let width = AnalysisSums(layerCount: L, options: options).flattened.count
        var exchange = [Double](repeating: 0, count: batches.count * width)   // (batches, width)
        for (b, batch) in batches.enumerated() where b % comm.size == comm.rank {
            var sums = AnalysisSums(layerCount: L, options: options)
            let workers = (0..<model.parallelism.threads).map { _ in PositionStatistics(layerCount: L, width: C) }
            let logits = model.forward(tokens: batch.tokens, batch: batch.batch, length: batch.length) { l, h in
                store.store(layer: l, from: h, rows: batch.rows)
                progress?.update(batch: b, phase: .fullPass, step: l)   // layers 0…l−1 done
            }
            sums.loss.add(NextTokenLoss.tally(logits: logits, targets: batch.targets, vocab: V))
            PositionStatistics.add(batch, from: store, into: workers, parallelism: model.parallelism)
            (sums.lastToken, sums.allTokens, sums.influence) = PositionStatistics.merged(workers)
            progress?.update(batch: b, phase: .statistics, step: 1)
            sums.removal?.add(model: model, states: store, batch: batch) { progress?.update(batch: b, phase: .removalScan, step: $0) }
            if sums.earlyExit != nil {
                let fullArgmax = TopToken.argmax(rows: logits.data, count: batch.rows, vocab: V)
                sums.earlyExit!.add(model: model, states: store, batch: batch, fullArgmax: fullArgmax) {
                    progress?.update(batch: b, phase: .earlyExit, step: $0)
                }
            }
            exchange.replaceSubrange((b * width)..<((b + 1) * width), with: sums.flattened)
        }
        if comm.size > 1 { exchange = comm.allreduceSum(exchange) }
        var total = AnalysisSums(layerCount: L, options: options)
        for b in batches.indices {
            total.merge(AnalysisSums(layerCount: L, options: options, flattened: exchange[(b * width)..<((b + 1) * width)]))
        }
        let (fullLoss, lastToken, allTokens, influence, removal, earlyExit)
            = (total.loss, total.lastToken, total.allTokens, total.influence, total.removal, total.earlyExit)
        return LayerAnalysis(
            model: source.model, dataset: source.dataset, samples: samples.count, tokens: allTokens.count,
            lossTokens: fullLoss.count, context: source.context, layers: L,
            blockSizes: options.blockSizes ?? Array(1..<max(L, 1)), fullLoss: fullLoss.mean,
            angularDistance: AngularDistanceMatrices(lastToken: lastToken.matrix, allTokens: allTokens.matrix),
            blockInfluence: influence.values, removalLoss: removal?.losses, earlyExitLoss: earlyExit?.losses,
            earlyExitTop1Agreement: earlyExit?.agreement)
    }
}
