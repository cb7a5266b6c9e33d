// What one decoder block's forward keeps for its backward, each buffer with the op that reads it. Inference
// uses one set for every layer as its workspace and keeps no attention log-sum-exp.
// Dimension glossary: B batch, T tokens, N = B·T rows, C model dim, H query heads, G kv heads, D head dim,
// F ffn dim, R LoRA rank.
import Checkpoint
import Tensor

/// Saved activations of one decoder block (the block's input is kept by the caller, as the previous block's
/// output). The residual stream after the attention half is kept as `mid`.
package final class BlockActivations {
    let rstd1: Tensor           // (N) input norm's 1/rms: its backward rescales with it
    let normed1: Tensor         // (N, C) q/k/v input: their dWeight and LoRA dA read it
    let q: Tensor               // (N, H·D) after RoPE: attention backward (dK = dSᵀ·Q)
    let k: Tensor               // (N, G·D) after RoPE: attention backward (dQ = dS·K)
    let v: Tensor               // (N, G·D): attention backward (dP = dOut·Vᵀ)
    let logSumExp: Tensor?      // (B, H, T) log Σ exp of each query's scaled scores: the attention backward rebuilds
                                //   the probabilities from it, tile by tile (nil: inference)
    let attn: Tensor            // (N, H·D) attention output: o's input, and the attention backward's rowsum(dOut ⊙ out)
    let mid: Tensor             // (N, C) stream after the attention half: post-attention norm's input
    let rstd2: Tensor           // (N) post-attention norm's 1/rms
    let normed2: Tensor         // (N, C) gate/up input
    let gate: Tensor            // (N, F) gate output before SiLU: SwiGLU backward
    let up: Tensor              // (N, F) up output: SwiGLU backward
    let hidden: Tensor          // (N, F) silu(gate) ⊙ up: down's input
    /// (N, R) x·Aᵀ per adapted projection: the adapter's dB reads it. A buffer of a larger rank serves a
    /// smaller one (rows are R apart), so one set can serve every layer under checkpointing.
    let loraHidden: [Projection: Tensor]

    /// Buffers for B sequences of T new tokens; `keepsLogSumExp` for a training forward.
    package init(config c: LlamaConfig, batch b: Int, length t: Int, loraRanks: [Projection: Int], keepsLogSumExp: Bool = true) {
        let n = b * t, C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim
        let F = c.intermediateSize
        rstd1 = Tensor(zeros: [n]); normed1 = Tensor(zeros: [n, C])
        q = Tensor(zeros: [n, H * D]); k = Tensor(zeros: [n, G * D]); v = Tensor(zeros: [n, G * D])
        logSumExp = keepsLogSumExp ? Tensor(zeros: [b, H, t]) : nil; attn = Tensor(zeros: [n, H * D])
        mid = Tensor(zeros: [n, C]); rstd2 = Tensor(zeros: [n]); normed2 = Tensor(zeros: [n, C])
        gate = Tensor(zeros: [n, F]); up = Tensor(zeros: [n, F]); hidden = Tensor(zeros: [n, F])
        loraHidden = loraRanks.mapValues { Tensor(zeros: [n, $0]) }
    }

    /// The LoRA ranks a layer's adapters need, by projection.
    package static func loraRanks(of layer: LlamaLayer) -> [Projection: Int] {
        var ranks: [Projection: Int] = [:]
        for p in Projection.allCases { if let a = layer.linear(p).lora { ranks[p] = a.rank } }
        return ranks
    }

    /// Whether there is a LoRA buffer of at least the rank each projection in `ranks` needs.
    package func covers(loraRanks ranks: [Projection: Int]) -> Bool {
        ranks.allSatisfy { (loraHidden[$0.key]?.shape[1] ?? 0) >= $0.value }
    }

    /// The x·Aᵀ buffer of projection p, nil when p has no adapter.
    func lora(_ p: Projection) -> UnsafeMutablePointer<Float>? { loraHidden[p]?.data }
}
