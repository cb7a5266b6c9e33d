// Early exit (logit lens): the residual stream h_l after l layers sent straight through the final norm
// and lm_head, for l = 1…L. Its loss says how far from done the prediction is after l layers, and the
// top-1 agreement how often its most likely token already equals the full model's (over every real
// position, the last one of each sequence included). At l = L it is the full model.
// Dimension glossary: N = B·T rows, V vocab, L layers.
import Llama
import Tensor

/// Loss and top-1 agreement of each early exit, accumulated over batches.
public struct EarlyExitScan {
    /// Index l−1: the exit after l layers.
    public private(set) var tallies: [LossTally]
    /// Index l−1: real positions whose argmax equals the full model's.
    public private(set) var agreements: [Int]
    /// Real positions compared.
    public private(set) var positions = 0

    /// Logits computed at once (rows × V): bounds the scratch buffer to 64 MB whatever the vocabulary.
    static let logitBufferFloats = 1 << 24

    public init(layerCount: Int) {
        tallies = [LossTally](repeating: LossTally(), count: layerCount)
        agreements = [Int](repeating: 0, count: layerCount)
    }

    /// Adds one batch, given its L+1 hidden states and the full model's argmax of every row; `done(l)`
    /// is called after exit l.
    public mutating func add(model: LlamaModel, states: HiddenStateStore, batch: CalibrationBatch, fullArgmax: [Int],
                             done: (Int) -> Void = { _ in }) {
        let V = model.config.vocabSize, C = model.config.hiddenSize
        let chunk = max(1, min(batch.rows, Self.logitBufferFloats / V))
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: chunk * V)
        let hidden = UnsafeMutablePointer<Float>.allocate(capacity: chunk * C)
        defer {
            logits.deallocate()
            hidden.deallocate()
        }
        for l in 1...tallies.count {
            for first in stride(from: 0, to: batch.rows, by: chunk) {
                let rows = min(chunk, batch.rows - first)
                states.gather(layer: l, rows: first, count: rows, into: hidden)
                model.logits(fromHidden: hidden, rows: rows, into: logits)
                let scored = Self.score(logits, rows: first..<(first + rows), batch: batch, fullArgmax: fullArgmax, vocab: V,
                                        parallelism: model.parallelism)
                tallies[l - 1].add(scored.loss)
                agreements[l - 1] += scored.agreements
            }
            done(l)
        }
        positions += batch.realTokens
    }

    /// The loss over `rows` of `batch` whose logits (rows.count, V) are `logits`, and how many real rows
    /// have the full model's argmax. One log-sum-exp pass per row gives both (loss = lse − logit of the
    /// target, as `NextTokenLoss`); the rows are split between the cores.
    static func score(_ logits: UnsafePointer<Float>, rows: Range<Int>, batch: CalibrationBatch, fullArgmax: [Int],
                      vocab V: Int, parallelism: Parallelism) -> (loss: LossTally, agreements: Int) {
        var losses = [LossTally](repeating: LossTally(), count: parallelism.threads)
        var agreements = [Int](repeating: 0, count: parallelism.threads)
        losses.withUnsafeMutableBufferPointer { loss in
            agreements.withUnsafeMutableBufferPointer { agree in
                parallelism.workers(rows.count) { worker, range in
                    for r in range where batch.isReal(row: rows.lowerBound + r) {
                        let row = rows.lowerBound + r
                        let (lse, argmax) = Kernels.logSumExp(logits + r * V, count: V)
                        let target = batch.targets[row]
                        if target != NextTokenLoss.ignoreIndex {
                            loss[worker].sum += lse - Double(logits[r * V + Int(target)])
                            loss[worker].count += 1
                        }
                        if argmax == fullArgmax[row] { agree[worker] += 1 }
                    }
                }
            }
        }
        var total = LossTally()
        losses.forEach { total.add($0) }
        return (total, agreements.reduce(0, +))
    }

    /// Adds the batches another scan counted.
    mutating func merge(_ other: EarlyExitScan) {
        for i in tallies.indices { tallies[i].add(other.tallies[i]); agreements[i] += other.agreements[i] }
        positions += other.positions
    }

    /// (sum, count) of each tally, the agreements and the positions, flat (what MPI ranks exchange).
    var flattened: [Double] { tallies.flatMap { [$0.sum, Double($0.count)] } + agreements.map(Double.init) + [Double(positions)] }

    init(layerCount: Int, flattened: ArraySlice<Double>) {
        self.init(layerCount: layerCount)
        precondition(flattened.count == 3 * layerCount + 1, "\(flattened.count) values for \(3 * layerCount + 1)")
        let f = Array(flattened)
        for i in tallies.indices {
            tallies[i].sum = f[2 * i]
            tallies[i].count = Int(f[2 * i + 1])
            agreements[i] = Int(f[2 * layerCount + i])
        }
        positions = Int(f[3 * layerCount])
    }

    /// Mean loss of each exit.
    public var losses: [Double] { tallies.map(\.mean) }
    /// Fraction of positions where each exit's top token is the full model's.
    public var agreement: [Double] { agreements.map { Double($0) / Double(positions) } }
}
