// The model-level training pass: a forward that keeps what each op's backward needs (through the model's one
// block forward), then a backward that is the forward read backwards, one call per line (each block through its
// backward, beside the forward in Llama/DecoderBlock.swift). The forward never touches a gradient buffer: the
// fused lm_head + loss writes its gradients into this pass's own scratch, which the backward consumes. The
// backward adds (+=) into whichever buffers the model has allocated (LoRA dA/dB, full dWeight/dBias, norm and
// embedding gradients): zeroing them once per step is the caller's job. Frozen weights have no buffer and get
// nothing.
// With `recomputesBlocks` (gradient checkpointing) the forward keeps only each block's input and the backward
// recomputes one block's activations right before that block's backward: one extra forward of the blocks
// for memory that no longer grows with L.
// LayerSkip (Elhoushi et al., 2024) rides on the same pass: with `ExitWeights` the loss is Σ_l w_l · CE of exit l,
// exit l sending layer l's output through the shared final norm and the fused chunked head (no (B, T, V) logits
// per exit either); each exit's head gradient is taken during forward like the last one's and added into the
// stream's gradient at that layer during backward. With a `LayerSkipMask` a sample skips a layer: its rows pass
// through unchanged, and the backward passes their gradient through unchanged too (the layer's parameters get
// nothing from them).
// Distillation (`Distillation`) rides on it too: the teacher's forward runs on the same micro-batch (each rank's
// shard under MPI) up to its final-normed rows, and the last exit's head scores the student against the labels
// and the teacher chunk by chunk; only that exit's head gradient changes, so LoRA, partial finetuning,
// checkpointing and gradient accumulation work as without it. Earlier exits keep the plain cross-entropy.
// Dimension glossary: B batch, T tokens, N = B·T rows, C model dim, H query heads, G kv heads, D head dim,
// F ffn dim, V vocab, L layers, R LoRA rank.
import Checkpoint
import Foundation
import Llama
import Tensor

/// Forward and backward of a `LlamaModel` on B sequences of T tokens with next-token cross-entropy.
public final class LlamaTrainingPass {
    /// The model whose gradient buffers receive the gradients.
    public let model: LlamaModel
    /// B, sequences per call.
    public let batch: Int
    /// T, tokens per sequence.
    public let length: Int
    /// Gradient checkpointing: keep block inputs only, recompute each block during backward.
    public let recomputesBlocks: Bool

    private let rows: Int                    // N
    private let ids: UnsafeMutablePointer<Int32>        // (N) token ids: the embedding's backward scatters by them
    private let positions: UnsafeMutablePointer<Int32>  // (N) position of each row within its sequence (RoPE)
    private let blockInputs: [Tensor]        // L+1 × (N, C): stream entering each layer, last = before final norm
    private var saved: [BlockActivations?]   // L: each layer's activations (nil: held in `shared`)
    private var shared: BlockActivations?    // one set for checkpointing and for layers that need no backward
    private var sharedHoldsLayer: Int?       // the layer whose activations `shared` holds now
    private let finalRstd: Tensor            // (N) final norm's 1/rms: its backward
    private let finalNormed: Tensor          // (N, C) lm_head input
    private let dFinalNormed: Tensor         // (N, C) gradient the head produced during forward, for backward
    private var dHeadPending: Tensor?        // (V, C) the head weight's gradient from forward, added in backward
    private let head: LMHeadLoss
    // Early exits l < L−1 (the last exit is the final norm above): what each one's backward needs.
    private var exitRstd: [Tensor?]          // L−1 × (N) the final norm's 1/rms on layer l's output
    private var dExitNormed: [Tensor?]       // L−1 × (N, C) the head's gradient for exit l, from forward
    private var exitNormed: Tensor?          // (N, C) an exit's normed rows during forward (scratch)
    private var exitWeights: [Double] = []   // L, the last forward's w_l (0: exit not computed)
    private var skipMask: LayerSkipMask?     // the last forward's layer dropout
    private var dPassThrough: Tensor?        // (N, C) gradient of skipping samples' rows, carried past a layer
    /// Per exit l = 0…L−1, the unweighted loss tally of the last forward (nil: exit off).
    public private(set) var exitTallies: [LossTally?] = []
    private var teacherRows: Tensor?         // (N, C_t) the teacher's final-normed rows of this micro-batch
    /// The last forward's distillation parts at the last exit (nil: not distilled).
    public private(set) var distillationTally: DistillationTally?
    // Forward scratch and backward gradients, shared by all layers.
    private let scratch: BlockScratch        // o/down outputs and attention scores
    private let recomputed: Tensor           // (N, C) a recomputed block's output (discarded)
    private let dStream: Tensor              // (N, C) gradient of the residual stream
    private let gradients: BlockGradients    // the block backward's own gradients
    private var forwardDone = false
    private var dropoutKey: UInt64?          // the LoRA dropout key of the last forward, for backward

    /// Buffers for B sequences of T tokens. `checkpointing` turns on per-block recomputation.
    public init(model: LlamaModel, batch b: Int, length t: Int, checkpointing: Bool = false) {
        precondition(b > 0 && t > 0, "B=\(b), T=\(t)")
        let c = model.config, n = b * t, C = c.hiddenSize
        self.model = model
        batch = b
        length = t
        recomputesBlocks = checkpointing
        rows = n
        ids = .allocate(capacity: n)
        ids.initialize(repeating: 0, count: n)
        positions = .allocate(capacity: n)
        for r in 0..<n { positions[r] = Int32(r % t) }
        blockInputs = (0...c.numHiddenLayers).map { _ in Tensor(zeros: [n, C]) }
        saved = Array(repeating: nil, count: c.numHiddenLayers)
        exitRstd = Array(repeating: nil, count: max(0, c.numHiddenLayers - 1))
        dExitNormed = Array(repeating: nil, count: max(0, c.numHiddenLayers - 1))
        finalRstd = Tensor(zeros: [n]); finalNormed = Tensor(zeros: [n, C]); dFinalNormed = Tensor(zeros: [n, C])
        head = LMHeadLoss(vocab: c.vocabSize, dim: C, parallelism: model.parallelism)
        scratch = BlockScratch(config: c, rows: n, queries: t, keys: t, parallelism: model.parallelism)
        recomputed = Tensor(zeros: [n, C])
        dStream = Tensor(zeros: [n, C])
        gradients = BlockGradients(config: c, rows: n)
    }

    deinit {
        ids.deallocate()
        positions.deallocate()
    }

    /// Forward then backward; returns the loss tally. The gradients added are those of sum(losses) /
    /// `lossNormalizer` (default: this batch's counted targets, i.e. of its mean loss). See `forward` for
    /// `exits`, `skipping` and `distillation`.
    public func run(tokens: [Int32], targets: [Int32], lossNormalizer: Int? = nil, dropoutKey: UInt64? = nil,
                    exits: ExitWeights? = nil, skipping: LayerSkipMask? = nil, distillation: Distillation? = nil) -> LossTally {
        let tally = forward(tokens: tokens, targets: targets, lossNormalizer: lossNormalizer, dropoutKey: dropoutKey,
                            exits: exits, skipping: skipping, distillation: distillation)
        backward()
        return tally
    }

    /// The loss alone (evaluation): no gradient is computed, and a pending `backward()` is cancelled. With
    /// `exits`, the early-exit loss (and `exitTallies` each exit's own).
    public func loss(tokens: [Int32], targets: [Int32], exits: ExitWeights? = nil, skipping: LayerSkipMask? = nil) -> LossTally {
        let tally = forward(tokens: tokens, targets: targets, lossNormalizer: nil, dropoutKey: nil, exits: exits,
                            skipping: skipping, distillation: nil, computesGradients: false)
        forwardDone = false
        return tally
    }

    // MARK: forward

    /// The forward pass on B·T `tokens` against `targets` (B·T labels, −100 = not counted; see
    /// `NextTokenLoss.shiftedTargets`), keeping what `backward()` needs; returns the loss tally (sum and count of
    /// the counted positions' cross-entropies). The head's own backward runs here already (see `LMHeadLoss`), into
    /// this pass's scratch, scaled by 1 / `lossNormalizer`: pass the counted targets of the whole optimizer step
    /// (all micro-batches) so that the accumulated gradient is that of the step's mean loss. No gradient buffer of
    /// the model is touched. `dropoutKey` (a fresh value per micro-batch) turns on the adapters' LoRA dropout.
    /// LayerSkip, per step: `exits` (from `EarlyExitLoss.weights(layers:step:totalSteps:)`) makes the loss the
    /// early-exit loss Σ_l w_l · CE_l, returned as a tally whose sum is Σ_l w_l · sum_l over the counted targets
    /// (so its mean is the weighted mean, and the normaliser keeps its meaning); `exitTallies` holds each exit's
    /// own. `skipping` (from `LayerDropout.mask(key:batch:layers:)`, or a fixed mask) is layer dropout.
    /// With `distillation` the last exit's loss is the distillation loss (the tally then sums it, and
    /// `distillationTally` holds its parts); its teacher must have been checked against this model's config.
    public func forward(tokens input: [Int32], targets: [Int32], lossNormalizer: Int? = nil, dropoutKey: UInt64? = nil,
                        exits: ExitWeights? = nil, skipping: LayerSkipMask? = nil, distillation: Distillation? = nil) -> LossTally {
        forward(tokens: input, targets: targets, lossNormalizer: lossNormalizer, dropoutKey: dropoutKey, exits: exits,
                skipping: skipping, distillation: distillation, computesGradients: true)
    }

    private func forward(tokens input: [Int32], targets: [Int32], lossNormalizer: Int?, dropoutKey: UInt64?,
                         exits: ExitWeights?, skipping: LayerSkipMask?, distillation: Distillation?,
                         computesGradients: Bool) -> LossTally {
        self.dropoutKey = dropoutKey
        let n = rows, L = model.layers.count, C = model.config.hiddenSize
        precondition(input.count == n && targets.count == n, "\(input.count) tokens, \(targets.count) targets for N=\(n)")
        if let exits { precondition(exits.weights.count == L, "\(exits.weights.count) exit weights for L=\(L)") }
        if let skipping { precondition(skipping.batch == batch && skipping.layers == L, "skip mask \(skipping.batch)×\(skipping.layers) for B=\(batch), L=\(L)") }
        exitWeights = (exits ?? .lastOnly(layers: L)).weights
        skipMask = skipping
        for r in 0..<n { ids[r] = input[r] }
        model.rope.ensure(length: length)
        prepareActivations()
        let eps = Float(model.config.rmsNormEps), ops = model.ops
        ops.embed(tokens: ids, count: n, table: model.embedding, into: blockInputs[0].data)
        for l in 0..<L {
            let skippers = skipping?.skippers(of: l) ?? []
            if skippers.count == batch {
                // Every sample skips: the layer does not run (and its backward will not either).
                blockInputs[l + 1].data.update(from: blockInputs[l].data, count: n * C)
                continue
            }
            model.blockForward(l, input: blockInputs[l].data, output: blockInputs[l + 1].data, batch: batch, length: length,
                               positions: positions, cache: nil, saving: activations(l), scratch: scratch,
                               dropoutKey: dropoutKey)
            if saved[l] == nil { sharedHoldsLayer = l }   // the shared set now holds this layer's activations
            for b in skippers { copyRows(of: b, from: blockInputs[l].data, to: blockInputs[l + 1].data) }
        }
        var dHead: Tensor? = nil
        if computesGradients, let g = headGradient {
            if dHeadPending == nil { dHeadPending = Tensor(zeros: g.shape) }
            dHead = dHeadPending
            dHead!.zero()
        }
        // The exits, deepest first; each one's head gradient (scaled by its weight) is kept for backward.
        exitTallies = Array(repeating: nil, count: L)
        distillationTally = nil
        let teacher = distillation.map { runTeacher(on: input, $0) }
        var tally = LossTally()
        for l in stride(from: L - 1, through: 0, by: -1) where exitWeights[l] > 0 {
            let w = exitWeights[l], last = l == L - 1
            let normed: Tensor, rstd: Tensor, dNormedExit: Tensor
            if last {
                (normed, rstd, dNormedExit) = (finalNormed, finalRstd, dFinalNormed)
            } else {
                if exitNormed == nil { exitNormed = Tensor(zeros: [n, C]) }
                if exitRstd[l] == nil { exitRstd[l] = Tensor(zeros: [n]) }
                if computesGradients && dExitNormed[l] == nil { dExitNormed[l] = Tensor(zeros: [n, C]) }
                (normed, rstd) = (exitNormed!, exitRstd[l]!)
                dNormedExit = dExitNormed[l] ?? dFinalNormed
            }
            ops.rmsNorm(blockInputs[l + 1].data, weight: model.finalNorm.data, into: normed.data, rstd: rstd.data, rows: n, cols: C, eps: eps)
            let own = targets.withUnsafeBufferPointer { y in
                head.forwardBackward(normed.data, rows: n, weight: model.lmHead, targets: y.baseAddress!,
                                     normalizer: lossNormalizer, lossWeight: w, teacher: last ? teacher : nil,
                                     dX: computesGradients ? dNormedExit.data : nil, dWeight: dHead?.data, profile: model.profile)
            }
            if last && teacher != nil { distillationTally = head.distillationTally }
            exitTallies[l] = own
            tally.sum += w * own.sum
            tally.count = own.count
        }
        forwardDone = computesGradients
        return tally
    }

    /// The teacher's final-normed rows of this micro-batch, for the head.
    private func runTeacher(on tokens: [Int32], _ distillation: Distillation) -> LMHeadLoss.Teacher {
        let width = distillation.teacher.config.hiddenSize
        let buffer = teacherRows.flatMap { $0.shape == [rows, width] ? $0 : nil } ?? Tensor(zeros: [rows, width])
        teacherRows = buffer
        distillation.teacher.finalNormedRows(tokens: tokens, batch: batch, length: length, into: buffer.data)
        return LMHeadLoss.Teacher(distillation: distillation, rows: buffer.data)
    }

    /// Copies sample b's T rows of (N, C) from `source` to `destination`.
    private func copyRows(of b: Int, from source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>) {
        let C = model.config.hiddenSize, span = length * C
        (destination + b * span).update(from: source + b * span, count: span)
    }

    // MARK: backward

    /// The backward pass of the last `forward`: adds the gradients of its mean loss into the model's
    /// gradient buffers.
    public func backward() {
        precondition(forwardDone, "backward() needs a forward() first")
        forwardDone = false
        let n = rows, L = model.layers.count, C = model.config.hiddenSize
        let lowest = lowestLayerNeedingBackward
        let embeddingTrains = model.dEmbedding != nil, ops = model.ops
        if let g = headGradient, let pending = dHeadPending { ops.addHeadGradient(pending.data, into: g.data, count: g.count) }
        if exitWeights[L - 1] > 0 {
            ops.rmsNormBackward(blockInputs[L].data, weight: model.finalNorm.data, rstd: finalRstd.data, dy: dFinalNormed.data,
                                dx: dStream.data, dWeight: model.dFinalNorm?.data, rows: n, cols: C)
        } else {
            dStream.zero()
        }
        for l in stride(from: L - 1, through: lowest, by: -1) {
            // dStream holds the gradient of layer l's output: add that of exit l, which reads it.
            if l < L - 1 { addExitGradient(l, into: dStream) }
            let skippers = skipMask?.skippers(of: l) ?? []
            if skippers.count == batch { continue }   // an identity for every sample: dStream passes unchanged
            let a = activations(l)
            if recomputesBlocks && sharedHoldsLayer != l {
                model.blockForward(l, input: blockInputs[l].data, output: recomputed.data, batch: batch, length: length,
                                   positions: positions, cache: nil, saving: a, scratch: scratch, dropoutKey: dropoutKey)
                sharedHoldsLayer = l
            }
            // Skipping samples: the block sees a zero output gradient for their rows (so its parameters get nothing
            // from them), and their input gradient is their output gradient, carried past the block.
            if !skippers.isEmpty {
                if dPassThrough == nil { dPassThrough = Tensor(zeros: [n, C]) }
                for b in skippers {
                    copyRows(of: b, from: dStream.data, to: dPassThrough!.data)
                    (dStream.data + b * length * C).update(repeating: 0, count: length * C)
                }
            }
            model.blockBackward(l, input: blockInputs[l].data, gradient: dStream.data, batch: batch, length: length,
                                positions: positions, saved: a, scratch: scratch, gradients: gradients, dropoutKey: dropoutKey,
                                needsInputGradient: l > lowest || embeddingTrains)
            for b in skippers { copyRows(of: b, from: dPassThrough!.data, to: dStream.data) }
        }
        // Exits below the lowest layer with a backward still train the final norm, when it trains.
        if model.dFinalNorm != nil {
            for l in 0..<min(lowest, L - 1) { addExitGradient(l, into: nil) }
        }
        if let dEmbedding = model.dEmbedding {
            ops.embeddingBackward(tokens: ids, count: n, dX: dStream.data, dim: C, dTable: dEmbedding.data)
        }
    }

    /// Exit l's backward through the final norm (its head part ran during forward): the final norm's weight
    /// gradient += when it trains, and the stream gradient at layer l's output `into` += (nil: not needed).
    private func addExitGradient(_ l: Int, into stream: Tensor?) {
        guard exitWeights[l] > 0, let rstd = exitRstd[l], let dy = dExitNormed[l] else { return }
        guard stream != nil || model.dFinalNorm != nil else { return }
        let n = rows, C = model.config.hiddenSize, ops = model.ops
        ops.rmsNormBackward(blockInputs[l + 1].data, weight: model.finalNorm.data, rstd: rstd.data, dy: dy.data,
                            dx: gradients.dBranchInput.data, dWeight: model.dFinalNorm?.data, rows: n, cols: C)
        // The exit branches off the stream at layer l's output: its input gradient adds into the stream's there.
        if let stream { ops.residualBackward(branchInputGradient: gradients.dBranchInput.data, into: stream.data, count: n * C) }
    }

    // MARK: bookkeeping

    /// The lm_head's gradient buffer: the embedding's when tied (it then sums both uses).
    private var headGradient: Tensor? { model.untiedLMHead == nil ? model.dEmbedding : model.dUntiedLMHead }

    /// Layers below this need no backward at all: nothing in or under them trains. With a trainable embedding
    /// every layer passes its gradient down.
    private var lowestLayerNeedingBackward: Int {
        if model.dEmbedding != nil { return 0 }
        return model.layers.firstIndex { l in
            l.dInputNorm != nil || l.dPostAttentionNorm != nil || Projection.allCases.contains { l.linear($0).isTrainable }
        } ?? model.layers.count
    }

    /// Where layer l's activations live.
    private func activations(_ l: Int) -> BlockActivations { saved[l] ?? shared! }

    /// (Re)allocates activation buffers for the adapters attached now: per layer without checkpointing (shared
    /// below the lowest layer that needs a backward), one shared set with it.
    private func prepareActivations() {
        let c = model.config, L = model.layers.count
        let lowest = lowestLayerNeedingBackward
        var sharedRanks: [Projection: Int] = [:]
        for l in 0..<L {
            let ranks = BlockActivations.loraRanks(of: model.layers[l])
            if recomputesBlocks || l < lowest {
                saved[l] = nil
                sharedRanks.merge(ranks) { max($0, $1) }
            } else if !(saved[l]?.covers(loraRanks: ranks) ?? false) {
                saved[l] = BlockActivations(config: c, batch: batch, length: length, loraRanks: ranks)
            }
        }
        if saved.contains(where: { $0 == nil }) {
            if !(shared?.covers(loraRanks: sharedRanks) ?? false) {
                shared = BlockActivations(config: c, batch: batch, length: length, loraRanks: sharedRanks)
            }
        } else {
            shared = nil
        }
        // The forward below overwrites the shared set layer by layer and records which layer it holds last.
        sharedHoldsLayer = nil
    }
}
