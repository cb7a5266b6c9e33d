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
    public let inputNorm: Tensor                                   // (C)
    public let postAttentionNorm: Tensor                           // (C)
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
    /// (B, T, V), or nil when not asked for.
    public var logits: Tensor?
    /// L+1 tensors of (B, T, C): index 0 the embedding output, index l the residual stream entering
    /// layer l, index L the last layer's output before the final norm. Empty unless asked for.
    public var hiddenStates: [Tensor] = []
}

/// A Llama-architecture causal language model.
public final class LlamaModel {
    public let config: LlamaConfig
    public let embedding: Tensor            // (V, C)
    public let layers: [LlamaLayer]         // L
    public let finalNorm: Tensor            // (C)
    /// (V, C); nil when tied to `embedding`.
    public let untiedLMHead: Tensor?
    public let rope: RotaryEmbedding
    /// Gradients, allocated only when these train.
    public var dEmbedding: Tensor?          // (V, C)
    public var dFinalNorm: Tensor?          // (C)
    public var dUntiedLMHead: Tensor?       // (V, C)

    /// The lm_head matrix (V, C): the embedding when tied.
    public var lmHead: Tensor { untiedLMHead ?? embedding }

    public init(config: LlamaConfig, embedding: Tensor, layers: [LlamaLayer], finalNorm: Tensor, lmHead: Tensor?) {
        self.config = config
        self.embedding = embedding
        self.layers = layers
        self.finalNorm = finalNorm
        self.untiedLMHead = lmHead
        rope = RotaryEmbedding(config: config)
    }

    /// Loads config.json and the safetensors weights of a Hugging Face checkpoint directory.
    public static func load(directory: URL) throws -> LlamaModel {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            throw PruneError(file: directory, "model directory not found")
        }
        let config = try LlamaConfig.load(directory.appendingPathComponent("config.json"))
        let store = try CheckpointTensors(directory: directory)
        return try load(config: config, tensors: store)
    }

    /// Builds the model from already-opened tensors.
    public static func load(config c: LlamaConfig, tensors store: CheckpointTensors) throws -> LlamaModel {
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        func linear(_ p: Projection, _ i: Int, _ out: Int, _ inp: Int, bias: Bool) throws -> Linear {
            let w = try store.tensor(WeightNames.projection(p, layer: i), shape: [out, inp])
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
        let embedding = try store.tensor(WeightNames.embedding, shape: [c.vocabSize, C])
        var head: Tensor? = nil
        if !c.tieWordEmbeddings {
            guard store.contains(WeightNames.lmHead) else {
                throw PruneError(file: store.directory, "tie_word_embeddings is false but the checkpoint has no lm_head.weight")
            }
            head = try store.tensor(WeightNames.lmHead, shape: [c.vocabSize, C])
        }
        return LlamaModel(config: c, embedding: embedding, layers: layers,
                          finalNorm: try store.tensor(WeightNames.finalNorm, shape: [C]), lmHead: head)
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

    /// Runs B sequences of T tokens (row-major `tokens`, B·T ids).
    /// - skipping: layer indices left out (removal analysis); hidden states keep their layer indexing.
    /// - captureHiddenStates: copies h_0…h_L into the output.
    /// - observe: called with (l, h) for the residual stream h (N, C) entering layer l, l = 0…L−1, then
    ///   (L, last layer's output before the final norm); `h` is valid only during the call.
    /// - cache: keys/values of earlier positions; the new ones are appended.
    public func forward(tokens: [Int32], batch b: Int, length t: Int, skipping: Set<Int> = [],
                        captureHiddenStates: Bool = false, computeLogits: Bool = true,
                        cache: KVCache? = nil, observe: ((Int, UnsafePointer<Float>) -> Void)? = nil) -> ForwardOutput {
        precondition(tokens.count == b * t, "\(tokens.count) tokens for B=\(b), T=\(t)")
        let C = config.hiddenSize, n = b * t
        let past = cache?.length ?? 0
        if let cache { precondition(cache.batch == b, "cache batch \(cache.batch) ≠ \(b)") }
        rope.ensure(length: past + t)
        var out = ForwardOutput()
        let h = Tensor(zeros: [b, t, C])   // residual stream
        embed(tokens, into: h.data)
        let ws = BlockWorkspace(config: config, rows: n, batch: b, queries: t, keys: past + t)
        let positions = (0..<n).map { Int32(past + $0 % t) }
        func visit(_ l: Int) {
            if captureHiddenStates { out.hiddenStates.append(h.copy()) }
            observe?(l, h.data)
        }
        for (i, layer) in layers.enumerated() {
            visit(i)
            if skipping.contains(i) { continue }
            blockForward(layer, layerIndex: i, h: h.data, batch: b, length: t, positions: positions, cache: cache, ws: ws)
        }
        visit(layers.count)
        cache?.advance(by: t)
        if computeLogits {
            let logits = Tensor(zeros: [b, t, config.vocabSize])
            self.logits(fromHidden: h.data, rows: n, into: logits.data)
            out.logits = logits
        }
        return out
    }

    /// Copies embedding rows for `tokens` into x (N, C).
    public func embed(_ tokens: [Int32], into x: UnsafeMutablePointer<Float>) {
        let C = config.hiddenSize
        for (r, id) in tokens.enumerated() {
            precondition(id >= 0 && Int(id) < config.vocabSize, "token id \(id) outside the vocabulary (\(config.vocabSize))")
            (x + r * C).update(from: embedding.data + Int(id) * C, count: C)
        }
    }

    /// Final RMSNorm then lm_head: logits (N, V) from residual rows (N, C). The early-exit view uses it on
    /// intermediate hidden states too.
    public func logits(fromHidden h: UnsafePointer<Float>, rows n: Int, into logits: UnsafeMutablePointer<Float>) {
        let C = config.hiddenSize
        let normed = UnsafeMutablePointer<Float>.allocate(capacity: n * C)
        defer { normed.deallocate() }
        Kernels.rmsNorm(h, weight: finalNorm.data, into: normed, rstd: nil, rows: n, cols: C, eps: Float(config.rmsNormEps))
        Gemm.linear(normed, rows: n, inFeatures: C, weight: lmHead.data, outFeatures: config.vocabSize, into: logits)
    }

    /// One decoder block in place on the residual stream h (N, C).
    func blockForward(_ layer: LlamaLayer, layerIndex: Int, h: UnsafeMutablePointer<Float>, batch b: Int, length t: Int,
                      positions: [Int32], cache: KVCache?, ws: BlockWorkspace) {
        let c = config, n = b * t, C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim
        let eps = Float(c.rmsNormEps)
        // Attention half.
        Kernels.rmsNorm(h, weight: layer.inputNorm.data, into: ws.normed, rstd: nil, rows: n, cols: C, eps: eps)
        layer.q.forward(ws.normed, rows: n, into: ws.q)
        layer.k.forward(ws.normed, rows: n, into: ws.k)
        layer.v.forward(ws.normed, rows: n, into: ws.v)
        positions.withUnsafeBufferPointer { pos in
            rope.cos.withUnsafeBufferPointer { cosT in
                rope.sin.withUnsafeBufferPointer { sinT in
                    Kernels.rope(ws.q, positions: pos.baseAddress!, cos: cosT.baseAddress!, sin: sinT.baseAddress!, rows: n, heads: H, headDim: D)
                    Kernels.rope(ws.k, positions: pos.baseAddress!, cos: cosT.baseAddress!, sin: sinT.baseAddress!, rows: n, heads: G, headDim: D)
                }
            }
        }
        if let cache {
            cache.store(layer: layerIndex, keys: ws.k, values: ws.v, batch: b, length: t)
            let kv = cache.pointers(layer: layerIndex)
            Attention.forward(q: ws.q, keys: kv.keys, values: kv.values, keyBatchStride: cache.capacity * G * D,
                              batch: b, queries: t, keyCount: cache.length + t, firstQueryPosition: cache.length,
                              heads: H, kvHeads: G, headDim: D, scores: ws.scores, probabilities: nil, out: ws.attn)
        } else {
            Attention.forward(q: ws.q, keys: ws.k, values: ws.v, keyBatchStride: t * G * D,
                              batch: b, queries: t, keyCount: t, firstQueryPosition: 0,
                              heads: H, kvHeads: G, headDim: D, scores: ws.scores, probabilities: nil, out: ws.attn)
        }
        layer.o.forward(ws.attn, rows: n, into: ws.proj)
        Kernels.add(ws.proj, into: h, count: n * C)
        // MLP half.
        Kernels.rmsNorm(h, weight: layer.postAttentionNorm.data, into: ws.normed, rstd: nil, rows: n, cols: C, eps: eps)
        layer.gate.forward(ws.normed, rows: n, into: ws.gate)
        layer.up.forward(ws.normed, rows: n, into: ws.up)
        Kernels.siluMul(ws.gate, ws.up, into: ws.gate, count: n * c.intermediateSize)
        layer.down.forward(ws.gate, rows: n, into: ws.proj)
        Kernels.add(ws.proj, into: h, count: n * C)
    }
}

/// Scratch buffers for one block, reused across layers.
final class BlockWorkspace {
    let normed, q, k, v, attn, proj, gate, up, scores: UnsafeMutablePointer<Float>

    init(config c: LlamaConfig, rows n: Int, batch: Int, queries t: Int, keys s: Int) {
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        func alloc(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            p.initialize(repeating: 0, count: max(count, 1))
            return p
        }
        normed = alloc(n * C); q = alloc(n * H * D); k = alloc(n * G * D); v = alloc(n * G * D)
        attn = alloc(n * H * D); proj = alloc(n * C); gate = alloc(n * F); up = alloc(n * F)
        scores = alloc(Attention.scoreScratchCount(queries: t, keys: s))
    }

    deinit {
        for p in [normed, q, k, v, attn, proj, gate, up, scores] { p.deallocate() }
    }
}
