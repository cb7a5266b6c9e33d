// ReplaceMe (Shopkhoev et al. 2025): a run of removed layers s…e is replaced, without training, by one linear
// map T folded into the MLP down-projection of the kept layer p = s − 1. On calibration text, with Y the
// residual stream after p's attention, M its MLP output (p's output is Y + M) and h the stream leaving layer e,
// T minimises ‖M·T − (h − Y)‖² (rows are tokens): least squares in Float64 over real (unpadded) tokens. T = I
// is plain deletion, so the two errors side by side say what the map buys before any healing. Several runs are
// each estimated on the full model's states.
// Dimension glossary: B batch, T tokens, N = B·T rows, C model dim.
import Llama
import Support
import Tensor

/// The linear map that replaces one run of removed layers.
public struct LinearReplacement: Sendable {
    /// The kept layer whose down_proj takes the map (the layer before the run).
    public let layerBefore: Int
    /// The removed layers, 0-based inclusive.
    public let removed: ClosedRange<Int>
    /// T (C, C), row-major, for row vectors: the MLP output m becomes m·T, i.e. down_proj W (C, F) becomes Tᵀ·W.
    public let transform: [Double]
    /// Calibration tokens the map was estimated on.
    public let tokens: Int
    /// ‖M·T − (h − Y)‖² / ‖h − Y‖² on the calibration tokens.
    public let relativeError: Double
    /// The same with T = I: deleting the run.
    public let deletionRelativeError: Double

    /// Estimates one map per maximal run of consecutive layers in `removed` on `samples` (token sequences of at
    /// least one token). Refuses a run that starts at layer 0 (no layer before it to take the map) and
    /// calibration too small to determine a C×C map. `progress` hears each calibration batch.
    public static func estimate(model: LlamaModel, samples: [[Int32]], removing removed: [Int], batchSize: Int,
                                progress: ProgressSink? = nil) throws -> [LinearReplacement] {
        let C = model.config.hiddenSize
        let runs = LayerSelection.ranges(removed)
        if let first = runs.first, first.lowerBound == 0 {
            throw PruneError("--replace", "replaceme folds its map into the layer before the removed block, and layers \(LayerSelection(first)) start at layer 0")
        }
        func undetermined(_ run: ClosedRange<Int>, _ tokens: Int) -> PruneError {
            PruneError("--replace", "replaceme's \(C)×\(C) map for layers \(LayerSelection(run)) is not determined by \(tokens) calibration tokens "
                       + "(give more or longer samples)")
        }
        let tokens = samples.map(\.count).reduce(0, +)
        if tokens < C, let run = runs.first { throw undetermined(run, tokens) }   // before the passes, not after
        var equations = runs.map { _ in NormalEquations(width: C) }
        let batches = CalibrationBatch.batches(samples, batchSize: batchSize)
        let reporter = progress.map { ProgressReporter("replaceme calibration", total: batches.count, unit: "batch", sink: $0) }
        // Per run: Y and M of its layer p (kept until the stream leaving its last layer arrives).
        var mid = runs.map { _ in [Float]() }, mlp = runs.map { _ in [Float]() }
        for (done, batch) in batches.enumerated() {
            let n = batch.rows
            let real = (0..<n).filter(batch.isReal(row:))
            var target = [Float](repeating: 0, count: n * C)
            _ = model.forward(tokens: batch.tokens, batch: batch.batch, length: batch.length, observeBlock: { l, y, out in
                for (r, run) in runs.enumerated() {
                    if l == run.lowerBound - 1 {
                        mid[r] = Array(UnsafeBufferPointer(start: y, count: n * C))
                        mlp[r] = (0..<(n * C)).map { out[$0] - y[$0] }
                    } else if l == run.upperBound {
                        // h − Y: what M·T must give.
                        for i in 0..<(n * C) { target[i] = out[i] - mid[r][i] }
                        mlp[r].withUnsafeBufferPointer { m in
                            target.withUnsafeBufferPointer { t in equations[r].add(m.baseAddress!, t.baseAddress!, rows: real) }
                        }
                    }
                }
            })
            reporter?.update(done: done + 1, units: 1)
        }
        return try zip(runs, equations).map { run, eq in
            guard let t = eq.solve() else { throw undetermined(run, eq.rows) }
            let scale = max(eq.targetSquares, .leastNormalMagnitude)
            return LinearReplacement(layerBefore: run.lowerBound - 1, removed: run, transform: t, tokens: eq.rows,
                                     relativeError: eq.squaredError(t) / scale, deletionRelativeError: eq.identityError / scale)
        }
    }
}
