// The ops of the passes over a model, each attributed to its `StepProfile` part here and nowhere else: the block
// and the passes around it call `ops.rmsNorm(…)`, `ops.attention(…)`, … and read as the ops they run, while
// which part an op's time and FLOPs go to (and how its FLOPs are counted) is written once per kind below.
// Without a profile (every pass but a breakdown's) a call is the op itself after one optional check: nothing is
// allocated or captured, so decoding at batch 1 pays nothing for it.
// Dimension glossary: B batch, T queries, S keys, N rows (B·T), C model dim, H query heads, G kv heads, D head dim,
// F ffn dim, V vocab, I/O a projection's in/out features.
import Checkpoint
import Tensor

/// The ops of a pass, measured as their parts when there is a profile.
package struct ProfiledOps {
    /// Where the measurements go; nil: none are taken.
    package let profile: StepProfile?
    /// The threads the elementwise ops split their rows or elements over (the model's).
    package let parallelism: Parallelism

    // MARK: elementwise: RMSNorm, RoPE, SwiGLU, the residual adds

    /// `RMSNorm.forward`.
    @inline(__always)
    package func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                 rstd: UnsafeMutablePointer<Float>?, rows n: Int, cols C: Int, eps: Float) {
        profile.measure(.elementwise) { RMSNorm.forward(x, weight: weight, into: y, rstd: rstd, rows: n, cols: C, eps: eps, parallelism: parallelism) }
    }

    /// `RMSNorm.backward`.
    @inline(__always)
    package func rmsNormBackward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?, rows n: Int, cols C: Int) {
        profile.measure(.elementwise) {
            RMSNorm.backward(x, weight: weight, rstd: rstd, dy: dy, dx: dx, dWeight: dWeight, rows: n, cols: C, parallelism: parallelism)
        }
    }

    /// `RoPE.forward`.
    @inline(__always)
    package func rope(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, rope: RotaryEmbedding, rows n: Int, heads: Int) {
        profile.measure(.elementwise) { RoPE.forward(x, positions: positions, rope: rope, rows: n, heads: heads, parallelism: parallelism) }
    }

    /// `RoPE.backward`.
    @inline(__always)
    package func ropeBackward(_ dx: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, rope: RotaryEmbedding, rows n: Int, heads: Int) {
        profile.measure(.elementwise) { RoPE.backward(dx, positions: positions, rope: rope, rows: n, heads: heads, parallelism: parallelism) }
    }

    /// `SwiGLU.forward`.
    @inline(__always)
    package func swiGLU(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, into h: UnsafeMutablePointer<Float>, count: Int) {
        profile.measure(.elementwise) { SwiGLU.forward(gate: g, up: u, into: h, count: count, parallelism: parallelism) }
    }

    /// `SwiGLU.backward`.
    @inline(__always)
    package func swiGLUBackward(gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, dh: UnsafePointer<Float>,
                        dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        profile.measure(.elementwise) { SwiGLU.backward(gate: g, up: u, dh: dh, dGate: dGate, dUp: dUp, count: count, parallelism: parallelism) }
    }

    /// `Residual.forward`.
    @inline(__always)
    package func residual(skip: UnsafePointer<Float>, branch: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        profile.measure(.elementwise) { Residual.forward(skip: skip, branch: branch, into: out, count: count, parallelism: parallelism) }
    }

    /// `Residual.backward`.
    @inline(__always)
    package func residualBackward(branchInputGradient: UnsafePointer<Float>, into dStream: UnsafeMutablePointer<Float>, count: Int) {
        profile.measure(.elementwise) { Residual.backward(branchInputGradient: branchInputGradient, into: dStream, count: count, parallelism: parallelism) }
    }

    // MARK: projections (their base GEMMs' FLOPs; `Linear` reports its adapter's work as LoRA's part)

    /// `linear.forward` as projection p.
    @inline(__always)
    package func project(_ p: Projection, _ linear: Linear, _ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>,
                 loraHidden: UnsafeMutablePointer<Float>?, dropoutKey: UInt64?, parallelism: Parallelism) {
        profile.measure(.projection(p, .forward)) {
            linear.forward(x, rows: n, into: y, loraHidden: loraHidden, dropoutKey: dropoutKey, parallelism: parallelism, profile: profile)
        }
    }

    /// `linear.backward` as projection p.
    @inline(__always)
    package func projectBackward(_ p: Projection, _ linear: Linear, _ x: UnsafePointer<Float>, rows n: Int, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, accumulate: Bool, loraHidden: UnsafePointer<Float>?, dropoutKey: UInt64?,
                         parallelism: Parallelism) {
        profile.measure(.projection(p, .backward)) {
            linear.backward(x, rows: n, dy: dy, dx: dx, accumulate: accumulate, loraHidden: loraHidden, dropoutKey: dropoutKey,
                            parallelism: parallelism, profile: profile)
        }
    }

    // MARK: attention (the causal triangle's products, `Attention.flops`)

    /// `Attention.forward`.
    @inline(__always)
    package func attention(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, keyBatchStride: Int,
                   batch b: Int, queries t: Int, keyCount s: Int, firstQueryPosition q0: Int, heads H: Int, kvHeads G: Int,
                   headDim D: Int, scratch: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>?,
                   out: UnsafeMutablePointer<Float>, parallelism: Parallelism) {
        profile.measure(.attention(.forward),
                        flops: Attention.flops(batch: b, queries: t, firstQueryPosition: q0, heads: H, headDim: D, pass: .forward)) {
            Attention.forward(q: q, keys: keys, values: values, keyBatchStride: keyBatchStride, batch: b, queries: t, keyCount: s,
                              firstQueryPosition: q0, heads: H, kvHeads: G, headDim: D, scratch: scratch, logSumExp: logSumExp,
                              out: out, parallelism: parallelism)
        }
    }

    /// `Attention.backward`.
    @inline(__always)
    package func attentionBackward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                           out: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>, keyBatchStride: Int, batch b: Int, queries t: Int,
                           keyCount s: Int, firstQueryPosition q0: Int, heads H: Int, kvHeads G: Int, headDim D: Int,
                           scratch: UnsafeMutablePointer<Float>, dq: UnsafeMutablePointer<Float>, dKeys: UnsafeMutablePointer<Float>,
                           dValues: UnsafeMutablePointer<Float>, parallelism: Parallelism) {
        profile.measure(.attention(.backward),
                        flops: Attention.flops(batch: b, queries: t, firstQueryPosition: q0, heads: H, headDim: D, pass: .backward)) {
            Attention.backward(dOut: dOut, q: q, keys: keys, values: values, out: out, logSumExp: logSumExp, keyBatchStride: keyBatchStride,
                               batch: b, queries: t, keyCount: s, firstQueryPosition: q0, heads: H, kvHeads: G, headDim: D,
                               scratch: scratch, dq: dq, dKeys: dKeys, dValues: dValues, parallelism: parallelism)
        }
    }

    // MARK: embedding and head

    /// `Embedding.forward`.
    @inline(__always)
    package func embed(tokens: UnsafePointer<Int32>, count n: Int, table: Weight, into x: UnsafeMutablePointer<Float>) {
        profile.measure(.embedding) { Embedding.forward(tokens: tokens, count: n, table: table, into: x) }
    }

    /// `Embedding.backward`.
    @inline(__always)
    package func embeddingBackward(tokens: UnsafePointer<Int32>, count n: Int, dX: UnsafePointer<Float>, dim C: Int,
                           dTable: UnsafeMutablePointer<Float>) {
        profile.measure(.embedding) { Embedding.backward(tokens: tokens, count: n, dX: dX, dim: C, dTable: dTable) }
    }

    /// The lm_head's logits (N, V) = x (N, C)·headᵀ.
    @inline(__always)
    package func head(_ x: UnsafePointer<Float>, rows n: Int, weight head: Weight, into logits: UnsafeMutablePointer<Float>,
              parallelism: Parallelism) {
        profile.measure(.head, flops: 2 * Double(n * head.rows * head.columns)) {
            Gemm.linear(x, rows: n, weight: head, into: logits, parallelism: parallelism)
        }
    }

    /// The head weight's gradient (V·C values) a training forward kept, added into the model's buffer.
    @inline(__always)
    package func addHeadGradient(_ pending: UnsafePointer<Float>, into dHead: UnsafeMutablePointer<Float>, count: Int) {
        profile.measure(.head) { Kernels.add(pending, into: dHead, count: count) }
    }

    // MARK: buffers

    /// The buffers `make` allocates, their first touch counted as `part`'s (the part that writes them).
    @inline(__always)
    package func allocate<T>(for part: StepProfile.Part, _ make: () -> T) -> T {
        profile.measure(part, make)
    }
}

extension LlamaModel {
    /// The ops of a pass over this model, measured into its `profile` when one is set.
    package var ops: ProfiledOps { ProfiledOps(profile: profile, parallelism: parallelism) }
}
