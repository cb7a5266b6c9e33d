// The calibration loss with each contiguous block of n layers removed: L−n+1 candidate cuts, each measured
// directly instead of guessed from a similarity proxy. One full pass per batch keeps h_0…h_L; the cut that
// drops layers s…s+n−1 resumes from the stored h_s (layers before s compute what the full pass computed), so
// the candidates cost on average half a pass each. A greedy variant removes one layer at a time, each time the
// one whose removal (together with those already removed) gives the lowest loss.
// Dimension glossary: B batch, T tokens, C model dim, L layers, n block size.
import Llama

/// Calibration losses of candidate cuts.
public struct BlockRemovalScan: Codable, Equatable, Sendable {
    /// Index s: the loss with layers s…s+n−1 removed (nil where the block starts past L−n).
    public var losses: [Double]
    /// n
    public var size: Int
    /// Loss of the full model on the same tokens.
    public var fullLoss: Double

    /// Measures every block of `size` layers on `samples` (each at least two tokens).
    public static func measure(model: LlamaModel, samples: [[Int32]], size n: Int, batchSize: Int = 4,
                               progress: ((Int, Int) -> Void)? = nil) -> BlockRemovalScan {
        let L = model.config.numHiddenLayers, C = model.config.hiddenSize, V = model.config.vocabSize
        precondition(n >= 1 && n < L, "block size \(n) outside 1…\(L - 1)")
        let batches = CalibrationBatch.batches(samples, batchSize: batchSize)
        let store = HiddenStateStore(stateCount: L + 1, width: C)
        store.reserve(rows: batches.map(\.rows).max()!)
        var tallies = [LossTally](repeating: LossTally(), count: L - n + 1)
        var full = LossTally()
        let total = batches.count * (L - n + 1)
        var done = 0
        for batch in batches {
            let logits = model.forward(tokens: batch.tokens, batch: batch.batch, length: batch.length) { l, h in
                store.store(layer: l, from: h, rows: batch.rows)
            }
            full.add(NextTokenLoss.tally(logits: logits, targets: batch.targets, vocab: V))
            for s in 0...(L - n) {
                let out = model.logits(resumingFrom: store.tensor(layer: s, batch: batch.batch, length: batch.length),
                                       atLayer: s, batch: batch.batch, length: batch.length, skipping: Set(s..<(s + n)))
                tallies[s].add(NextTokenLoss.tally(logits: out, targets: batch.targets, vocab: V))
                done += 1
                progress?(done, total)
            }
        }
        return BlockRemovalScan(losses: tallies.map(\.mean), size: n, fullLoss: full.mean)
    }

    /// The start of the block with the lowest loss, among starts ≥ `firstStart` (1 keeps layer 0).
    public func best(firstStart: Int = 1) -> Int? {
        losses.indices.filter { $0 >= firstStart }.min { (losses[$0], $0) < (losses[$1], $1) }
    }

    /// Greedy non-contiguous removal: `count` times, drop the layer whose removal (beside those dropped already)
    /// gives the lowest calibration loss. Returns the layers in the order dropped and the loss after each.
    public static func greedy(model: LlamaModel, samples: [[Int32]], count: Int, batchSize: Int = 4, allowFirstLayer: Bool = false,
                              progress: ((Int, Int) -> Void)? = nil) -> [(layer: Int, loss: Double)] {
        let L = model.config.numHiddenLayers, C = model.config.hiddenSize, V = model.config.vocabSize
        let batches = CalibrationBatch.batches(samples, batchSize: batchSize)
        let store = HiddenStateStore(stateCount: L + 1, width: C)
        store.reserve(rows: batches.map(\.rows).max()!)
        var dropped: [(layer: Int, loss: Double)] = []
        var done = 0
        let total = count * batches.count
        var tallies = [[LossTally]](repeating: [LossTally](repeating: LossTally(), count: L), count: count)
        // Each round needs the states of the model without the layers dropped so far: run every batch once per round.
        for round in 0..<count {
            let removed = Set(dropped.map(\.layer))
            for batch in batches {
                _ = model.forward(tokens: batch.tokens, batch: batch.batch, length: batch.length) { l, h in
                    store.store(layer: l, from: h, rows: batch.rows)
                }
                // The stored h_l are the full model's; resume at the first removed-or-candidate layer with the removed set.
                for i in 0..<L where !removed.contains(i) && (allowFirstLayer || i > 0) {
                    let skip = removed.union([i])
                    let start = skip.min()!
                    let out = model.logits(resumingFrom: store.tensor(layer: start, batch: batch.batch, length: batch.length),
                                           atLayer: start, batch: batch.batch, length: batch.length, skipping: skip)
                    tallies[round][i].add(NextTokenLoss.tally(logits: out, targets: batch.targets, vocab: V))
                }
                done += 1
                progress?(done, total)
            }
            let candidates = (0..<L).filter { !removed.contains($0) && (allowFirstLayer || $0 > 0) }
            guard let pick = candidates.min(by: { (tallies[round][$0].mean, $0) < (tallies[round][$1].mean, $1) }) else { break }
            dropped.append((pick, tallies[round][pick].mean))
        }
        return dropped
    }
}
