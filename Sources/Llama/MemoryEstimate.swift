// What a job will hold in memory, estimated from config.json and the job's shape before any weight is
// loaded, so that a run that cannot fit is refused at once with the numbers instead of being killed by
// the OOM killer hours in. Every term follows an allocation the code makes:
//   weights      every parameter as Float32 from the config; once the checkpoint's header is read,
//                `weightBytes` replaces it with what the load holds: 16-bit matrices kept as stored count
//                at their file size (mapped pages), converted tensors at 4 bytes
//   loading      the file pages a converting load reads while it makes its Float32 copies: resident during
//                the load only, before anything else is allocated, so the total counts the larger of this
//                and what the job allocates afterwards
//   activations  one block's buffers for N = B·T rows (BlockActivations, BlockScratch, the residual), the
//                attention tiles of each thread (a fixed size: attention keeps no (T, S) scores), and for
//                training every layer's saved activations (or, with checkpointing, each layer's input and
//                one layer's buffers)
//   logits       (N, V) of a forward (inference); training's loss head works in chunks of M rows (with a
//                teacher, its logits of the same M rows beside them)
//   KV cache     2·L·B·S·G·D for generation over S positions
//   training     gradient, AdamW m and v for each trainable parameter (and the trainable copy itself
//                when it is not a weight, as LoRA matrices are)
//   other        what the job keeps besides (analysis: h_0…h_L of a batch; distillation: the teacher's weights)
//   runtime      the Swift runtime, OpenBLAS's buffers and each thread's widening scratch
// A training job's estimate (`training(…)`) lives beside the training pass whose allocations it follows
// (Training/TrainingMemoryEstimate.swift).
// Dimension glossary: B batch, T tokens, N = B·T, C model dim, H query heads, G kv heads, D head dim,
// F ffn dim, V vocab, L layers, S cached positions.
import Checkpoint
import Foundation
import Support

/// Bytes a job needs, by kind.
public struct MemoryEstimate: Equatable, Sendable {
    public var weights = 0
    public var activations = 0
    public var logits = 0
    public var kvCache = 0
    public var training = 0
    public var other = 0
    public var runtime = 0
    public var loading = 0
    /// --compute bf16's packed bf16 copies of the frozen projections and the lm_head (one per direction run).
    public var bf16Copies = 0

    public init(weights: Int = 0, activations: Int = 0, logits: Int = 0, kvCache: Int = 0, training: Int = 0, other: Int = 0,
                runtime: Int = 0) {
        self.weights = weights
        self.activations = activations
        self.logits = logits
        self.kvCache = kvCache
        self.training = training
        self.other = other
        self.runtime = runtime
    }

    /// The sum (saturating: an absurd config gives Int.max, never an overflow trap).
    public var total: Int {
        Self.sum([weights, bf16Copies, max(loading, Self.sum([activations, logits, kvCache, training, other])), runtime])
    }

    /// A forward over B sequences of T tokens (eval, analyze, the prompt of generate), optionally with a KV
    /// cache of `cachedPositions` and `otherBytes` kept by the job.
    public static func inference(config c: LlamaConfig, batch b: Int, context t: Int, threads: Int,
                                 cachedPositions: Int = 0, otherBytes: Int = 0) -> MemoryEstimate {
        let n = mul(b, t), keys = max(t, cachedPositions)
        var e = MemoryEstimate()
        e.weights = mul(CheckpointValidation.parameterCount(c) ?? Int.max, 4)
        e.activations = sum([mul(block(c, rows: n, batch: b, tokens: t, logSumExp: false), 4),
                             mul(n, c.hiddenSize, 4 * 2),                          // residual, final norm
                             mul(attentionScratch(queries: t, keys: keys, threads: threads), 4)])
        e.logits = mul(n, c.vocabSize, 4)
        e.kvCache = mul(2, c.numHiddenLayers, b, cachedPositions, c.numKeyValueHeads, c.headDim, 4)
        e.other = otherBytes
        e.runtime = runtime(threads: threads)
        return e
    }

    /// Sets `weights` and `loading` from the checkpoint `tensors` loaded with `dtype`: 16-bit matrices kept as
    /// stored hold their file size (their pages are resident once read); every converted tensor holds 4 bytes an
    /// element, and its file pages stay resident while the file is mapped during the load (an F32 or
    /// `--weights-dtype f32` load peaks at the Float32 copies plus the file).
    public mutating func setWeights(from tensors: CheckpointTensors, dtype: WeightsDType) {
        var held = 0, read = 0
        for name in tensors.names {
            guard let (_, e) = try? tensors.entry(name) else { continue }
            let kept = dtype == .stored && e.shape.count == 2 && (e.dtype == .BF16 || e.dtype == .F16)
            held = Self.sum([held, kept ? e.end - e.begin : Self.mul(e.elementCount, 4)])
            if !kept { read = Self.sum([read, e.end - e.begin]) }
        }
        weights = held
        loading = read
    }

    /// Adds to `bf16Copies` a model's for --compute bf16: 2 bytes per element of every projection and of the lm_head,
    /// once for the forward products and, when `backward` (training), once more for the input gradients'.
    public mutating func addBF16Copies(config c: LlamaConfig, backward: Bool) {
        let C = c.hiddenSize, HD = c.numAttentionHeads * c.headDim, GD = c.numKeyValueHeads * c.headDim, F = c.intermediateSize
        let perLayer = Self.sum([Self.mul(2, HD, C), Self.mul(2, GD, C), Self.mul(3, F, C)])
        let elements = Self.sum([Self.mul(c.numHiddenLayers, perLayer), Self.mul(c.vocabSize, C)])
        bf16Copies = Self.sum([bf16Copies, Self.mul(elements, 2, backward ? 2 : 1)])
    }

    /// The runtime, OpenBLAS's buffers and the per-thread widening scratch (measured on stories260K: ~100 MB).
    package static func runtime(threads: Int) -> Int { sum([96 << 20, mul(threads, 8 << 20)]) }

    /// Elements of rank-r LoRA matrices (A: r × in, B: out × r) on `targets` in `layers` layers.
    public static func loraParameters(config c: LlamaConfig, rank r: Int, targets: [Projection], layers: Int) -> Int {
        let perLayer = targets.map { p in let s = PEFTAdapter.shape(p, c); return mul(r, sum([s.out, s.in])) }
        return mul(layers, sum(perLayer))
    }

    /// Bytes of h_0…h_L for B×T tokens (what an analysis keeps of each batch).
    public static func hiddenStates(config c: LlamaConfig, batch b: Int, context t: Int) -> Int {
        mul(b, t, c.numHiddenLayers + 1, c.hiddenSize, 4)
    }

    /// Elements of one block's buffers for N rows (BlockActivations + BlockScratch); training keeps the
    /// attention's (B, H, T) log-sum-exp too.
    package static func block(_ c: LlamaConfig, rows n: Int, batch b: Int, tokens t: Int, logSumExp: Bool) -> Int {
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        let perRow = sum([mul(4, C), 2, mul(2, H, D), mul(2, G, D), mul(3, F)])
        return sum([mul(n, perRow), logSumExp ? mul(b, H, t) : 0])
    }

    /// Elements of attention scratch: one set of tiles per thread (Attention.scoreScratchCount), saturating.
    package static func attentionScratch(queries t: Int, keys s: Int, threads: Int) -> Int {
        let tiles = Attention.Tiles.standard, tq = min(max(0, t), tiles.queries), tk = min(max(0, s), tiles.keys)
        return mul(max(1, threads), sum([mul(2, tq, tk), mul(2, tq)]))
    }

    /// Throws the one-line refusal when the job needs more than `available` bytes (nil: unknown, allowed).
    /// `job` says what was asked ("eval of 4 × 256 tokens").
    public func check(available: Int?, job: String, model: URL) throws {
        guard let available, total > available else { return }
        throw PruneError(file: model, "\(job) needs about \(summary), more than the \(SystemMemory.describe(available)) "
                         + "of memory available; use a smaller --batch-size or --context")
    }

    /// "1.23 GiB (weights …, activations …, …)", the non-zero parts only.
    public var summary: String {
        let parts = [("weights", weights), ("activations", activations), ("logits", logits), ("KV cache", kvCache), ("bf16 copies", bf16Copies),
                     ("gradients and optimizer state", training), ("kept states", other), ("runtime", runtime), ("file pages while converting", loading)]
            .filter { $0.1 > 0 }.map { "\($0.0) \(SystemMemory.describe($0.1))" }
        return "\(SystemMemory.describe(total)) (\(parts.joined(separator: ", ")))"
    }

    package static func mul(_ xs: Int...) -> Int {
        var p = 1
        for x in xs {
            let (r, o) = p.multipliedReportingOverflow(by: max(0, x))
            if o { return Int.max }
            p = r
        }
        return p
    }

    package static func sum(_ xs: [Int]) -> Int {
        var s = 0
        for x in xs {
            let (r, o) = s.addingReportingOverflow(max(0, x))
            if o { return Int.max }
            s = r
        }
        return s
    }
}
