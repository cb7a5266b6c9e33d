// What a job will hold at its peak, estimated before the model is loaded, from the checkpoint's header and the job's
// shape: weights (16-bit matrices mapped from the file when kept as stored, Float32 copies otherwise), activations,
// trainable state (values, gradients, AdamW's two moments) and a fixed overhead (runtime, OpenBLAS buffers, the
// per-thread widening scratch). `PRUNE_MEMORY_LIMIT` (bytes, or with a K/M/G suffix) turns an estimate above it
// into an error before anything large is allocated.
// Dimension glossary: B batch, T tokens, N = B·T, C model dim, H query heads, G kv heads, D head dim, F ffn dim,
// V vocab, L layers, R LoRA rank, M lm_head chunk rows.
import Checkpoint
import Foundation
import Support
import Tensor

/// A job's estimated peak resident memory, in bytes, by part.
public struct MemoryEstimate: Sendable, CustomStringConvertible {
    /// Weights as held: mapped 16-bit matrices count at their file size (their pages are resident once read).
    public var weights: Int
    /// Activations and scratch of the passes.
    public var activations: Int
    /// Trainable values, gradients and AdamW moments (16 bytes per trainable scalar).
    public var trainable: Int
    /// Runtime, OpenBLAS and widening scratch.
    public var overhead: Int

    public var total: Int { weights + activations + trainable + overhead }

    public var description: String {
        func gb(_ b: Int) -> String { String(format: "%.2f GB", Double(b) / 1e9) }
        return "\(gb(total)) (weights \(gb(weights)), activations \(gb(activations)), trainable \(gb(trainable)), overhead \(gb(overhead)))"
    }

    /// Bytes the weights of the checkpoint `tensors` take at their peak once loaded with `dtype`: 16-bit matrices
    /// kept as stored at their file size; every converted tensor at 4 bytes an element plus its file pages, which
    /// stay resident while the file is mapped during the load (an F32 or `--weights-dtype f32` load peaks at the
    /// Float32 copies plus the file).
    public static func weightBytes(tensors: CheckpointTensors, dtype: WeightsDType) -> Int {
        var bytes = 0
        for name in tensors.names {
            guard let (_, e) = try? tensors.entry(name) else { continue }
            let kept = dtype == .stored && e.shape.count == 2 && (e.dtype == .BF16 || e.dtype == .F16)
            bytes += kept ? e.end - e.begin : e.elementCount * 4 + (e.end - e.begin)
        }
        return bytes
    }

    static func overhead(parallelism: Parallelism) -> Int { 96 << 20 + parallelism.threads * (8 << 20) }

    /// A forward pass over B×T tokens (`model.forward`: full (N, V) logits when `logits`), e.g. eval, analyze.
    public static func forward(config c: LlamaConfig, weights: Int, batch b: Int, length t: Int, logits: Bool = true,
                               parallelism: Parallelism) -> MemoryEstimate {
        let n = b * t, C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim
        let F = c.intermediateSize, V = c.vocabSize
        // Stream h, the block's buffers (no probabilities), scratch branch, attention scores, normed rows for the head.
        var floats = n * C + (n * C * 3 + n * H * D * 2 + n * G * D * 2 + n * F * 3 + 2 * n) + n * C
        floats += t * t * parallelism.threads + n * C
        if logits { floats += n * V }
        return MemoryEstimate(weights: weights, activations: floats * 4, trainable: 0, overhead: overhead(parallelism: parallelism))
    }

    /// A LoRA training step (rank R on all seven projections of every layer, `LlamaTrainingPass` with or without
    /// checkpointing) on B×T tokens.
    public static func loraTraining(config c: LlamaConfig, weights: Int, batch b: Int, length t: Int, rank r: Int,
                                    checkpointing: Bool, parallelism: Parallelism) -> MemoryEstimate {
        let n = b * t, C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim
        let F = c.intermediateSize, V = c.vocabSize, L = c.numHiddenLayers
        let block = n * C * 3 + n * H * D * 2 + n * G * D * 2 + n * F * 3 + 2 * n + b * H * t * t + 7 * n * r
        var floats = (L + 1) * n * C + (checkpointing ? 1 : L) * block
        floats += 6 * n * C + 2 * n * H * D + 2 * n * G * D + 3 * n * F           // backward buffers
        let m = max(8, (12 << 20) / max(V, 1))
        floats += m * V + 2 * m * C                                                // lm_head chunk
        floats += t * t * parallelism.threads
        let perLayer = r * (C + H * D) * 2 + r * (C + G * D) * 2 * 2 + r * (C + F) * 3
        return MemoryEstimate(weights: weights, activations: floats * 4, trainable: 16 * L * perLayer,
                              overhead: overhead(parallelism: parallelism))
    }

    /// `PRUNE_MEMORY_LIMIT` in bytes ("24G", "16000M", "1000000"), nil when unset.
    public static var limit: Int? {
        guard let s = ProcessInfo.processInfo.environment["PRUNE_MEMORY_LIMIT"]?.trimmingCharacters(in: .whitespaces), !s.isEmpty else { return nil }
        let units: [Character: Double] = ["K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12]
        if let u = s.last.flatMap({ units[Character($0.uppercased())] }), let v = Double(s.dropLast()) { return Int(v * u) }
        return Double(s).map { Int($0) }
    }

    /// Throws when the estimate exceeds `PRUNE_MEMORY_LIMIT`, saying what takes the memory.
    public func check(_ what: String) throws {
        guard let limit = Self.limit, total > limit else { return }
        throw PruneError(what, String(format: "needs about %.2f GB, more than PRUNE_MEMORY_LIMIT (%.2f GB): ", Double(total) / 1e9, Double(limit) / 1e9)
                         + description)
    }
}
