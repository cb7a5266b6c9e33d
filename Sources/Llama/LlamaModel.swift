// The Llama decoder: embedding → L × block → final RMSNorm → lm_head, batched over B sequences of T
// tokens, Float32 with OpenBLAS. Block: h += o(attn(rope(q(n1(h))), rope(k(n1(h))), v(n1(h)))),
// then h += down(silu(gate(n2(h))) ⊙ up(n2(h))).
// Dimension glossary: B batch, T tokens, N = B·T rows, C model dim, H query heads, G kv heads,
// D head dim, F ffn dim, V vocab, L layers.
import Checkpoint
import Foundation
import Support
import Tensor

/// One decoder block's weights.
public final class LlamaLayer {
    public let q: Linear, k: Linear, v: Linear, o: Linear         // (H·D, C), (G·D, C), (G·D, C), (C, H·D)
    public let gate: Linear, up: Linear, down: Linear              // (F, C), (F, C), (C, F)
    public internal(set) var inputNorm: Tensor                     // (C)
    public internal(set) var postAttentionNorm: Tensor             // (C)
    /// Norm-weight gradients, allocated only when the layer trains in full.
    public var dInputNorm: Tensor?                                 // (C)
    public var dPostAttentionNorm: Tensor?                         // (C)

    public init(q: Linear, k: Linear, v: Linear, o: Linear, gate: Linear, up: Linear, down: Linear,
                inputNorm: Tensor, postAttentionNorm: Tensor) {
        self.q = q; self.k = k; self.v = v; self.o = o
        self.gate = gate; self.up = up; self.down = down
        self.inputNorm = inputNorm
        self.postAttentionNorm = postAttentionNorm
    }

    /// The projection by HF name.
    public func linear(_ p: Projection) -> Linear {
        switch p {
        case .q: q
        case .k: k
        case .v: v
        case .o: o
        case .gate: gate
        case .up: up
        case .down: down
        }
    }
}

/// What a forward pass returns.
public struct ForwardOutput {
    /// (B, T, V).
    public var logits: Tensor
    /// L+1 tensors of (B, T, C): index 0 the embedding output, index l the residual stream entering
    /// layer l, index L the last layer's output before the final norm. Empty unless asked for.
    public var hiddenStates: [Tensor] = []
}

/// A Llama-architecture causal language model.
public final class LlamaModel {
    public let config: LlamaConfig
    /// Parameters are replaced only by same-shaped views (`replaceParameter`), when training moves them into
    /// its flat buffer.
    /// Matrices stay in the checkpoint's 16-bit type when loaded with `.stored` (frozen; widened inside the GEMMs),
    /// Float32 otherwise.
    public private(set) var embedding: Weight            // (V, C)
    public let layers: [LlamaLayer]         // L
    public private(set) var finalNorm: Tensor            // (C)
    /// (V, C); nil when tied to `embedding`.
    public private(set) var untiedLMHead: Weight?
    public let rope: RotaryEmbedding
    /// Threads every pass over this model uses (chosen once, e.g. from --threads).
    public let parallelism: Parallelism
    /// Gradients, allocated only when these train.
    public var dEmbedding: Tensor?          // (V, C)
    public var dFinalNorm: Tensor?          // (C)
    public var dUntiedLMHead: Tensor?       // (V, C)

    /// Set only while a breakdown runs (`StepProfile`): every pass over the model then reports each op's time.
    public var profile: StepProfile?

    /// The lm_head matrix (V, C): the embedding when tied.
    public var lmHead: Weight { untiedLMHead ?? embedding }

    public init(config: LlamaConfig, embedding: Weight, layers: [LlamaLayer], finalNorm: Tensor, lmHead: Weight?,
                parallelism: Parallelism = .allCores) {
        self.config = config
        self.parallelism = parallelism
        self.embedding = embedding
        self.layers = layers
        self.finalNorm = finalNorm
        self.untiedLMHead = lmHead
        rope = RotaryEmbedding(config: config)
    }

    /// A Float32 model (random initialisation, tests).
    public convenience init(config: LlamaConfig, embedding: Tensor, layers: [LlamaLayer], finalNorm: Tensor, lmHead: Tensor?,
                            parallelism: Parallelism = .allCores) {
        self.init(config: config, embedding: Weight(embedding), layers: layers, finalNorm: finalNorm,
                  lmHead: lmHead.map(Weight.init), parallelism: parallelism)
    }

    /// Loads config.json and the safetensors weights of a Hugging Face checkpoint directory, after
    /// CheckpointValidation has checked the whole directory; `weightsDType` says whether 16-bit projection,
    /// embedding and lm_head matrices stay as stored (mapped, no copy) or become Float32.
    public static func load(directory: URL, weightsDType: WeightsDType = .stored,
                            parallelism: Parallelism = .allCores) throws -> LlamaModel {
        try load(CheckpointValidation.validate(directory), weightsDType: weightsDType, parallelism: parallelism)
    }

    /// Loads the weights of a validated checkpoint.
    public static func load(_ checkpoint: ValidatedCheckpoint, weightsDType: WeightsDType = .stored,
                            parallelism: Parallelism = .allCores) throws -> LlamaModel {
        try load(config: checkpoint.config, tensors: checkpoint.tensors, weightsDType: weightsDType, parallelism: parallelism)
    }

    /// Builds the model from already-opened tensors (which the 16-bit weights keep open).
    public static func load(config c: LlamaConfig, tensors store: CheckpointTensors, weightsDType: WeightsDType = .stored,
                            parallelism: Parallelism = .allCores) throws -> LlamaModel {
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        let keeps = weightsDType == .stored
        func linear(_ p: Projection, _ i: Int, _ out: Int, _ inp: Int, bias: Bool) throws -> Linear {
            let w = try store.weight(WeightNames.projection(p, layer: i), shape: [out, inp], keepsStoredDType: keeps)
            let b = bias ? try store.tensor(WeightNames.projectionBias(p, layer: i), shape: [out]) : nil
            return Linear(weight: w, bias: b)
        }
        var layers: [LlamaLayer] = []
        for i in 0..<c.numHiddenLayers {
            let ab = c.attentionBias, mb = c.mlpBias
            layers.append(LlamaLayer(
                q: try linear(.q, i, H * D, C, bias: ab), k: try linear(.k, i, G * D, C, bias: ab),
                v: try linear(.v, i, G * D, C, bias: ab), o: try linear(.o, i, C, H * D, bias: ab),
                gate: try linear(.gate, i, F, C, bias: mb), up: try linear(.up, i, F, C, bias: mb),
                down: try linear(.down, i, C, F, bias: mb),
                inputNorm: try store.tensor(WeightNames.inputNorm(layer: i), shape: [C]),
                postAttentionNorm: try store.tensor(WeightNames.postAttentionNorm(layer: i), shape: [C])))
        }
        if store.contains(WeightNames.layerPrefix(c.numHiddenLayers) + "input_layernorm.weight") {
            throw PruneError(file: store.directory, "checkpoint has more layers than num_hidden_layers = \(c.numHiddenLayers) in config.json")
        }
        let embedding = try store.weight(WeightNames.embedding, shape: [c.vocabSize, C], keepsStoredDType: keeps)
        var head: Weight? = nil
        if !c.tieWordEmbeddings {
            guard store.contains(WeightNames.lmHead) else {
                throw PruneError(file: store.directory, "tie_word_embeddings is false but the checkpoint has no lm_head.weight")
            }
            head = try store.weight(WeightNames.lmHead, shape: [c.vocabSize, C], keepsStoredDType: keeps)
        }
        return LlamaModel(config: c, embedding: embedding, layers: layers,
                          finalNorm: try store.tensor(WeightNames.finalNorm, shape: [C]), lmHead: head,
                          parallelism: parallelism)
    }

    /// Swaps the parameter called `name` (HF name) for `tensor`, which must have its shape: training moves
    /// trainable weights into one flat Float32 buffer and leaves views of it in the model.
    public func replaceParameter(named name: String, with tensor: Tensor) {
        func swap(_ old: Tensor) -> Tensor {
            precondition(old.shape == tensor.shape, "\(name): \(tensor.shape) replacing \(old.shape)")
            return tensor
        }
        func swap(_ old: Weight) -> Weight {
            precondition(old.shape == tensor.shape, "\(name): \(tensor.shape) replacing \(old.shape)")
            return Weight(tensor)
        }
        if name == WeightNames.embedding { embedding = swap(embedding); return }
        if name == WeightNames.finalNorm { finalNorm = swap(finalNorm); return }
        if name == WeightNames.lmHead, let head = untiedLMHead { untiedLMHead = swap(head); return }
        for (i, l) in layers.enumerated() {
            if name == WeightNames.inputNorm(layer: i) { l.inputNorm = swap(l.inputNorm); return }
            if name == WeightNames.postAttentionNorm(layer: i) { l.postAttentionNorm = swap(l.postAttentionNorm); return }
            for p in Projection.allCases {
                let linear = l.linear(p)
                if name == WeightNames.projection(p, layer: i) { linear.weight = swap(linear.weight); return }
                if name == WeightNames.projectionBias(p, layer: i), let b = linear.bias { linear.bias = swap(b); return }
            }
        }
        preconditionFailure("no parameter named \(name)")
    }

    /// Bytes the weights occupy as held (16-bit matrices at 2 bytes, the rest at 4; tied lm_head counted once).
    public var weightBytes: Int {
        var n = embedding.byteCount + 4 * finalNorm.count + (untiedLMHead?.byteCount ?? 0)
        for l in layers {
            n += 4 * (l.inputNorm.count + l.postAttentionNorm.count)
            for p in Projection.allCases { n += l.linear(p).weight.byteCount + 4 * (l.linear(p).bias?.count ?? 0) }
        }
        return n
    }

    /// Gives the pages of the mapped files that the 16-bit weights lie in back to the kernel, for a job that is
    /// about to map another model of the same size (the export self-check): the weights stay valid.
    public func dropResidentWeightPages() {
        embedding.dropResidentPages()
        untiedLMHead?.dropResidentPages()
        for l in layers { for p in Projection.allCases { l.linear(p).weight.dropResidentPages() } }
    }

    /// How the frozen projections and the lm_head multiply (`--compute`); Float32 until `compute(in:)` says otherwise.
    public private(set) var compute: ComputePrecision = .f32

    /// With `.bf16`, makes the products with every frozen projection and the lm_head run in bf16 with Float32
    /// accumulation (`BF16Gemm`); weights that train (views into the training buffer, set before or after) stay
    /// Float32, and so does everything that is not one of these products. `.f32` returns to the exact products (the
    /// export check compares files with the model that way). Throws one line where bf16 cannot run.
    public func compute(in precision: ComputePrecision) throws {
        try precision.checkAvailable()
        compute = precision
        let weights = [lmHead] + layers.flatMap { l in Projection.allCases.map { l.linear($0).weight } }
        guard precision == .bf16 else { return weights.forEach { $0.multiplyInFloat32() } }
        if (untiedLMHead == nil ? dEmbedding : dUntiedLMHead) == nil { lmHead.multiplyInBF16() }
        for l in layers {
            for p in Projection.allCases where l.linear(p).dWeight == nil { l.linear(p).weight.multiplyInBF16() }
        }
    }

    /// Bytes of the bf16 copies `--compute bf16` made so far (beside the weights as held).
    public var bf16CopyBytes: Int {
        var n = lmHead.bf16Packs?.byteCount ?? 0
        for l in layers { for p in Projection.allCases { n += l.linear(p).weight.bf16Packs?.byteCount ?? 0 } }
        return n
    }

    /// Number of parameters (tied lm_head counted once).
    public var parameterCount: Int {
        var n = embedding.count + finalNorm.count + (untiedLMHead?.count ?? 0)
        for l in layers {
            n += l.inputNorm.count + l.postAttentionNorm.count
            for p in Projection.allCases { n += l.linear(p).weight.count + (l.linear(p).bias?.count ?? 0) }
        }
        return n
    }

    // MARK: forward

    /// Runs B sequences of T tokens (row-major `tokens`, B·T ids) and returns their logits.
    /// - skipping: layer indices left out (removal analysis); hidden states keep their layer indexing.
    /// - captureHiddenStates: copies h_0…h_L into the output.
    /// - observe: called with (l, h) for the residual stream h (N, C) entering layer l, l = 0…L−1, then
    ///   (L, last layer's output before the final norm); `h` is valid only during the call.
    /// - cache: keys/values of earlier positions; the new ones are appended.
    /// - observeBlock: called after layer l's block with (l, its residual stream after attention — the MLP's
    ///   input stream —, the block's output); both valid only during the call.
    public func forward(tokens: [Int32], batch b: Int, length t: Int, skipping: Set<Int> = [],
                        captureHiddenStates: Bool = false,
                        cache: KVCache? = nil, observe: ((Int, UnsafePointer<Float>) -> Void)? = nil,
                        observeBlock: ((Int, UnsafePointer<Float>, UnsafePointer<Float>) -> Void)? = nil) -> ForwardOutput {
        precondition(tokens.count == b * t, "\(tokens.count) tokens for B=\(b), T=\(t)")
        if let cache { precondition(cache.batch == b, "cache batch \(cache.batch) ≠ \(b)") }
        // Each output's allocation (page faults of the first touch) is counted with the part that writes it.
        let h = embeddedStream(tokens, batch: b, length: t)
        var hiddenStates: [Tensor] = []
        runLayers(from: 0, on: h, batch: b, length: t, skipping: skipping, cache: cache, afterBlock: observeBlock) { l, h in
            if captureHiddenStates {
                let copy = Tensor(zeros: [b, t, self.config.hiddenSize])
                copy.data.update(from: h, count: copy.count)
                hiddenStates.append(copy)
            }
            observe?(l, h)
        }
        let logits = ops.allocate(for: .head) { Tensor(zeros: [b, t, config.vocabSize]) }
        self.logits(fromHidden: h.data, rows: b * t, into: logits.data)
        return ForwardOutput(logits: logits, hiddenStates: hiddenStates)
    }

    /// The final-normed rows (N, C) of B sequences of T tokens into `normed`: what the lm_head reads, without the
    /// logits (a distillation teacher's rows, which `LMHeadLoss` turns into logits a chunk at a time).
    public func finalNormedRows(tokens: [Int32], batch b: Int, length t: Int, into normed: UnsafeMutablePointer<Float>) {
        precondition(tokens.count == b * t, "\(tokens.count) tokens for B=\(b), T=\(t)")
        let h = embeddedStream(tokens, batch: b, length: t)
        runLayers(from: 0, on: h, batch: b, length: t)
        normalizeFinal(h.data, rows: b * t, into: normed)
    }

    /// A fresh residual stream (B, T, C) holding the embeddings of `tokens` (its allocation counted as the embedding's).
    private func embeddedStream(_ tokens: [Int32], batch b: Int, length t: Int) -> Tensor {
        let h = ops.allocate(for: .embedding) { Tensor(zeros: [b, t, config.hiddenSize]) }
        tokens.withUnsafeBufferPointer { ids in ops.embed(tokens: ids.baseAddress!, count: ids.count, table: embedding, into: h.data) }
        return h
    }

    /// The layer loop of every inference pass: layers `first`…L−1 (except `skipping`) in place on the residual
    /// stream h (B, T, C), whose rows sit at positions past…past+T−1 (past = the cache's length). `visit(l, h)`
    /// sees the stream entering each layer l ≥ first, then (L, the last layer's output before the final norm);
    /// `afterBlock(l, mid, out)` sees layer l's stream after attention and after the block.
    func runLayers(from first: Int, on h: Tensor, batch b: Int, length t: Int, skipping: Set<Int> = [],
                   cache: KVCache? = nil, afterBlock: ((Int, UnsafePointer<Float>, UnsafePointer<Float>) -> Void)? = nil,
                   visit: ((Int, UnsafePointer<Float>) -> Void)? = nil) {
        let n = b * t, past = cache?.length ?? 0
        if let cache { precondition(cache.lengths[first...].allSatisfy { $0 == past }, "layers of the cache hold \(cache.lengths) positions") }
        rope.ensure(length: past + t)
        let positions = (0..<n).map { Int32(past + $0 % t) }
        let (buffers, scratch) = ops.allocate(for: .workspace) {
            (BlockActivations(config: config, batch: b, length: t, loraRanks: [:], keepsLogSumExp: false),
             BlockScratch(config: config, rows: n, queries: t, keys: past + t, parallelism: parallelism))
        }
        positions.withUnsafeBufferPointer { pos in
            for l in first..<layers.count {
                visit?(l, h.data)
                if skipping.contains(l) { continue }
                blockForward(l, input: h.data, output: h.data, batch: b, length: t, positions: pos.baseAddress!,
                             cache: cache, saving: buffers, scratch: scratch)
                afterBlock?(l, buffers.mid.data, h.data)
            }
        }
        visit?(layers.count, h.data)
        cache?.advance(by: t)
    }

    /// Copies embedding rows for `tokens` into x (N, C).
    public func embed(_ tokens: [Int32], into x: UnsafeMutablePointer<Float>) {
        for (r, id) in tokens.enumerated() { embed(id, into: x + r * config.hiddenSize) }
    }

    /// Copies the embedding row of one token into x (C).
    public func embed(_ id: Int32, into x: UnsafeMutablePointer<Float>) {
        precondition(id >= 0 && Int(id) < config.vocabSize, "token id \(id) outside the vocabulary (\(config.vocabSize))")
        embedding.widenRows(Int(id), count: 1, into: x)
    }

    /// Final RMSNorm then lm_head: logits (N, V) from residual rows (N, C). The early-exit view uses it on
    /// intermediate hidden states too. `normed` (N, C) holds the norm's output when given (decoding reuses one),
    /// else a temporary does. `head` (V′, C) replaces the lm_head when given (a draft's reduced vocabulary).
    public func logits(fromHidden h: UnsafePointer<Float>, rows n: Int, into logits: UnsafeMutablePointer<Float>,
                       normed: UnsafeMutablePointer<Float>? = nil, head: Weight? = nil) {
        let C = config.hiddenSize
        let temporary = normed == nil ? UnsafeMutablePointer<Float>.allocate(capacity: n * C) : nil
        defer { temporary?.deallocate() }
        guard let buffer = normed ?? temporary else { return }
        normalizeFinal(h, rows: n, into: buffer)
        ops.head(buffer, rows: n, weight: head ?? lmHead, into: logits, parallelism: parallelism)
    }

    /// The final RMSNorm of residual rows h (N, C) into normed (N, C): what the lm_head reads.
    public func normalizeFinal(_ h: UnsafePointer<Float>, rows n: Int, into normed: UnsafeMutablePointer<Float>) {
        ops.rmsNorm(h, weight: finalNorm.data, into: normed, rstd: nil, rows: n, cols: config.hiddenSize, eps: Float(config.rmsNormEps))
    }
}
