// The decoder block as a forward/backward pair. The forward is the one way a block is computed: inference,
// analysis (an observer on the layer loop), generation (with a KV cache) and training (keeping activations for
// the backward pass) all call it. h_out = h + o(attn(rope(q(n1(h))), rope(k(n1(h))), v(n1(h)))); then
// += down(silu(gate(n2)) ⊙ up(n2)). The backward is the forward read backwards, one op per line, from the
// activations the forward saved (BlockActivations); the training pass calls it layer by layer.
// Dimension glossary: B batch, T new tokens, S keys (past + T), N = B·T rows, C model dim, H query heads,
// G kv heads, D head dim, F ffn dim.
import Checkpoint
import Tensor

/// Scratch a block forward (and its backward's attention) needs but nothing keeps: shared by every layer of a pass.
package final class BlockScratch {
    let branch: Tensor                       // (N, C) o or down output before the residual add
    let scores: UnsafeMutablePointer<Float>  // attention tiles per concurrent head (Attention.scoreScratchCount)
    private let scoreCount: Int

    package init(config c: LlamaConfig, rows n: Int, queries t: Int, keys s: Int, parallelism: Parallelism) {
        branch = Tensor(zeros: [n, c.hiddenSize])
        scoreCount = max(1, Attention.scoreScratchCount(queries: t, keys: s, parallelism: parallelism))
        scores = .allocate(capacity: scoreCount)
        scores.initialize(repeating: 0, count: scoreCount)
    }

    deinit { scores.deallocate() }
}

/// Gradients a block backward needs inside the block, shared by every layer of a pass; the stream's gradient
/// (its output's on entry, its input's on return) is the caller's.
package final class BlockGradients {
    let dNormed: Tensor                      // (N, C) gradient of a norm's output (sum over the projections it feeds)
    package let dBranchInput: Tensor                 // (N, C) gradient a norm sends back to the stream
    let dq: Tensor                           // (N, H·D)
    let dk: Tensor                           // (N, G·D)
    let dv: Tensor                           // (N, G·D)
    let dAttn: Tensor                        // (N, H·D)
    let dHidden: Tensor                      // (N, F) gradient of down's input
    let dGate: Tensor                        // (N, F)
    let dUp: Tensor                          // (N, F)

    package init(config c: LlamaConfig, rows n: Int) {
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        dNormed = Tensor(zeros: [n, C]); dBranchInput = Tensor(zeros: [n, C])
        dq = Tensor(zeros: [n, H * D]); dk = Tensor(zeros: [n, G * D]); dv = Tensor(zeros: [n, G * D])
        dAttn = Tensor(zeros: [n, H * D])
        dHidden = Tensor(zeros: [n, F]); dGate = Tensor(zeros: [n, F]); dUp = Tensor(zeros: [n, F])
    }
}

extension LlamaModel {
    /// Layer l's forward on B sequences of T tokens: the residual stream x (N, C) in, out (N, C) out (out may be
    /// x: the block then runs in place). Rows sit at `positions` (N). With a cache, keys and values are written
    /// after layer l's stored positions and attention reads all of them (the caller counts the new ones with
    /// `advance`); without, the T tokens attend among themselves.
    /// Everything the backward pass reads is written to `a` (the attention log-sum-exp only when it has room for it).
    /// `dropoutKey` (training only) turns on the adapters' LoRA dropout, with masks derived from it per layer and
    /// projection (`loraDropoutKey`). With the model's `profile` set, each op is measured as its part (`ProfiledOps`).
    package func blockForward(_ l: Int, input x: UnsafePointer<Float>, output out: UnsafeMutablePointer<Float>,
                      batch b: Int, length t: Int, positions: UnsafePointer<Int32>, cache: KVCache?,
                      saving a: BlockActivations, scratch: BlockScratch, dropoutKey: UInt64? = nil) {
        let layer = layers[l], c = config, n = b * t, p = parallelism, ops = self.ops
        let key = { (q: Projection) in dropoutKey.map { Self.loraDropoutKey($0, layer: l, projection: q) } }
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        let eps = Float(c.rmsNormEps)
        /// y = projection q of x (LoRA included), keeping its LoRA hidden in `a`.
        func project(_ q: Projection, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
            ops.project(q, layer.linear(q), x, rows: n, into: y, loraHidden: a.lora(q), dropoutKey: key(q), parallelism: p)
        }
        /// Projections of one input: a decoding step without adapters makes them one parallel region.
        func project(_ p: (Projection, UnsafeMutablePointer<Float>), _ q: (Projection, UnsafeMutablePointer<Float>),
                     _ r: (Projection, UnsafeMutablePointer<Float>)? = nil, from x: UnsafePointer<Float>) {
            guard n <= MatrixVector.maxRows, ops.profile == nil, layer.linear(p.0).lora == nil, layer.linear(q.0).lora == nil,
                  r.map({ layer.linear($0.0).lora == nil }) ?? true else {
                project(p.0, x, into: p.1)
                project(q.0, x, into: q.1)
                if let r { project(r.0, x, into: r.1) }
                return
            }
            let (lp, lq) = (layer.linear(p.0), layer.linear(q.0)), lr = r.map { (layer.linear($0.0), $0.1) }
            MatrixVector.linear(x, rows: n, (lp.weight, p.1), (lq.weight, q.1), lr.map { ($0.0.weight, $0.1) }, parallelism: self.parallelism)
            lp.addBias(to: p.1, rows: n)
            lq.addBias(to: q.1, rows: n)
            if let (linear, y) = lr { linear.addBias(to: y, rows: n) }
        }
        // Attention half.
        ops.rmsNorm(x, weight: layer.inputNorm.data, into: a.normed1.data, rstd: a.rstd1.data, rows: n, cols: C, eps: eps)
        project((.q, a.q.data), (.k, a.k.data), (.v, a.v.data), from: a.normed1.data)
        ops.rope(a.q.data, positions: positions, rope: rope, rows: n, heads: H)
        ops.rope(a.k.data, positions: positions, rope: rope, rows: n, heads: G)
        if let cache {
            cache.store(layer: l, keys: a.k.data, values: a.v.data, batch: b, length: t)
            let kv = cache.pointers(layer: l), past = cache.lengths[l]
            ops.attention(q: a.q.data, keys: kv.keys, values: kv.values, keyBatchStride: cache.capacity * G * D, batch: b,
                          queries: t, keyCount: past + t, firstQueryPosition: past, heads: H, kvHeads: G, headDim: D,
                          scratch: scratch.scores, logSumExp: nil, out: a.attn.data, parallelism: p)
        } else {
            ops.attention(q: a.q.data, keys: a.k.data, values: a.v.data, keyBatchStride: t * G * D, batch: b,
                          queries: t, keyCount: t, firstQueryPosition: 0, heads: H, kvHeads: G, headDim: D,
                          scratch: scratch.scores, logSumExp: a.logSumExp?.data, out: a.attn.data, parallelism: p)
        }
        project(.o, a.attn.data, into: scratch.branch.data)
        ops.residual(skip: x, branch: scratch.branch.data, into: a.mid.data, count: n * C)
        // MLP half.
        ops.rmsNorm(a.mid.data, weight: layer.postAttentionNorm.data, into: a.normed2.data, rstd: a.rstd2.data, rows: n, cols: C, eps: eps)
        project((.gate, a.gate.data), (.up, a.up.data), from: a.normed2.data)
        ops.swiGLU(gate: a.gate.data, up: a.up.data, into: a.hidden.data, count: n * F)
        project(.down, a.hidden.data, into: scratch.branch.data)
        ops.residual(skip: a.mid.data, branch: scratch.branch.data, into: out, count: n * C)
    }

    /// Backward of `blockForward` for layer l on B sequences of T tokens (no cache): dStream holds the gradient of
    /// the block's output on entry and of its input x on return (when `needsInputGradient`). `a` holds what the
    /// forward saved for this layer, `dropoutKey` is the forward's. Parameter gradients are added (+=) into the
    /// buffers the layer has; frozen ones get nothing.
    package func blockBackward(_ l: Int, input x: UnsafePointer<Float>, gradient dStream: UnsafeMutablePointer<Float>,
                       batch b: Int, length t: Int, positions: UnsafePointer<Int32>, saved a: BlockActivations,
                       scratch: BlockScratch, gradients g: BlockGradients, dropoutKey: UInt64? = nil, needsInputGradient: Bool) {
        let layer = layers[l], c = config, n = b * t, p = parallelism, ops = self.ops
        let key = { (q: Projection) in dropoutKey.map { Self.loraDropoutKey($0, layer: l, projection: q) } }
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        // The attention half's backward serves the block's input gradient and that half's own parameters only.
        let attentionTrains = layer.dInputNorm != nil || [layer.q, layer.k, layer.v, layer.o].contains { $0.isTrainable }
        let attentionNeeded = needsInputGradient || attentionTrains
        let normed1Gradient = needsInputGradient || layer.dInputNorm != nil ? g.dNormed.data : nil
        /// Projection q's backward from dy at its input x: dx (= or += with `accumulate`) and its parameters' gradients.
        func project(_ q: Projection, _ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                     accumulate: Bool = false) {
            ops.projectBackward(q, layer.linear(q), x, rows: n, dy: dy, dx: dx, accumulate: accumulate, loraHidden: a.lora(q),
                                dropoutKey: key(q), parallelism: p)
        }
        // MLP half, read backwards.
        project(.down, a.hidden.data, dy: dStream, dx: g.dHidden.data)
        ops.swiGLUBackward(gate: a.gate.data, up: a.up.data, dh: g.dHidden.data, dGate: g.dGate.data, dUp: g.dUp.data, count: n * F)
        project(.up, a.normed2.data, dy: g.dUp.data, dx: g.dNormed.data)
        project(.gate, a.normed2.data, dy: g.dGate.data, dx: g.dNormed.data, accumulate: true)
        ops.rmsNormBackward(a.mid.data, weight: layer.postAttentionNorm.data, rstd: a.rstd2.data, dy: g.dNormed.data,
                            dx: g.dBranchInput.data, dWeight: layer.dPostAttentionNorm?.data, rows: n, cols: C)
        ops.residualBackward(branchInputGradient: g.dBranchInput.data, into: dStream, count: n * C)
        guard attentionNeeded else { return }
        // Attention half, read backwards.
        project(.o, a.attn.data, dy: dStream, dx: g.dAttn.data)
        ops.attentionBackward(dOut: g.dAttn.data, q: a.q.data, keys: a.k.data, values: a.v.data, out: a.attn.data,
                              logSumExp: a.logSumExp!.data, keyBatchStride: t * G * D, batch: b, queries: t, keyCount: t,
                              firstQueryPosition: 0, heads: H, kvHeads: G, headDim: D, scratch: scratch.scores,
                              dq: g.dq.data, dKeys: g.dk.data, dValues: g.dv.data, parallelism: p)
        ops.ropeBackward(g.dk.data, positions: positions, rope: rope, rows: n, heads: G)
        ops.ropeBackward(g.dq.data, positions: positions, rope: rope, rows: n, heads: H)
        project(.v, a.normed1.data, dy: g.dv.data, dx: normed1Gradient)
        project(.k, a.normed1.data, dy: g.dk.data, dx: normed1Gradient, accumulate: true)
        project(.q, a.normed1.data, dy: g.dq.data, dx: normed1Gradient, accumulate: true)
        guard normed1Gradient != nil else { return }
        ops.rmsNormBackward(x, weight: layer.inputNorm.data, rstd: a.rstd1.data, dy: g.dNormed.data, dx: g.dBranchInput.data,
                            dWeight: layer.dInputNorm?.data, rows: n, cols: C)
        guard needsInputGradient else { return }
        ops.residualBackward(branchInputGradient: g.dBranchInput.data, into: dStream, count: n * C)
    }

    /// The dropout mask key of one adapter in one pass: distinct for every layer and projection.
    static func loraDropoutKey(_ pass: UInt64, layer l: Int, projection p: Projection) -> UInt64 {
        pass &+ UInt64(l * Projection.allCases.count + Projection.allCases.firstIndex(of: p)!) &* 0x9E37_79B9_7F4A_7C15
    }
}

extension LlamaModel {
    /// Layer l's keys and values for rows x (N, C) at `positions`, written into the cache after its stored ones
    /// (the caller advances it) without running the rest of the block: dynamic early exit fills the layers a
    /// token skipped from its exit hidden state this way (CALM's state propagation), so that later tokens can
    /// attend to it there.
    func storeKeysValues(_ l: Int, input x: UnsafePointer<Float>, rows n: Int, positions: UnsafePointer<Int32>,
                         cache: KVCache, saving a: BlockActivations) {
        let layer = layers[l], c = config, p = parallelism
        RMSNorm.forward(x, weight: layer.inputNorm.data, into: a.normed1.data, rstd: a.rstd1.data, rows: n,
                        cols: c.hiddenSize, eps: Float(c.rmsNormEps))
        layer.k.forward(a.normed1.data, rows: n, into: a.k.data, loraHidden: a.lora(.k), parallelism: p)
        layer.v.forward(a.normed1.data, rows: n, into: a.v.data, loraHidden: a.lora(.v), parallelism: p)
        RoPE.forward(a.k.data, positions: positions, rope: rope, rows: n, heads: c.numKeyValueHeads)
        cache.store(layer: l, keys: a.k.data, values: a.v.data, batch: 1, length: n)
    }
}
