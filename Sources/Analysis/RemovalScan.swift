// Removal loss: the calibration loss with layer i alone left out, for every i. Layers before i compute
// what the full pass already did, so each pass resumes from the captured h_i.
// Dimension glossary: B batch, T tokens, L layers.
import Llama

/// Loss tallies of the model with one layer removed at a time.
public struct RemovalScan {
    /// Index i: the loss with layer i skipped.
    public private(set) var tallies: [LossTally]

    public init(layerCount: Int) {
        tallies = [LossTally](repeating: LossTally(), count: layerCount)
    }

    /// Adds one batch, given its L+1 hidden states from the full pass; `done(k)` is called after k removals.
    public mutating func add(model: LlamaModel, states: HiddenStateStore, batch: CalibrationBatch, done: (Int) -> Void = { _ in }) {
        for i in tallies.indices {
            let logits = model.logits(resumingFrom: states.tensor(layer: i, batch: batch.batch, length: batch.length),
                                      atLayer: i, batch: batch.batch, length: batch.length, skipping: [i])
            tallies[i].add(NextTokenLoss.tally(logits: logits, targets: batch.targets, vocab: model.config.vocabSize))
            done(i + 1)
        }
    }

    /// Adds the batches another scan counted.
    mutating func merge(_ other: RemovalScan) {
        for i in tallies.indices { tallies[i].add(other.tallies[i]) }
    }

    /// (sum, count) of each tally, flat (what MPI ranks exchange).
    var flattened: [Double] { tallies.flatMap { [$0.sum, Double($0.count)] } }

    init(layerCount: Int, flattened: ArraySlice<Double>) {
        self.init(layerCount: layerCount)
        precondition(flattened.count == 2 * layerCount, "\(flattened.count) values for \(2 * layerCount)")
        let f = Array(flattened)
        for i in tallies.indices { tallies[i].sum = f[2 * i]; tallies[i].count = Int(f[2 * i + 1]) }
    }

    /// Mean loss with each layer removed.
    public var losses: [Double] { tallies.map(\.mean) }
}
