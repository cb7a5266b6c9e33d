// Batch-1 decoding's state, made once per generation and reused by every step: the KV cache, one block's
// workspace for up to MatrixVector.maxRows new positions (a token, or a verification pass of K+1), the final
// norm's output, logits and the per-row argmax. A step allocates nothing: its projections are matrix–vector
// kernels reading each weight once as stored, its attention goes query by query over the cache, and the
// greedy head keeps only each row's argmax. Every op of a step computes a row as it would alone, so a row of a
// verification pass equals the one-token step (self-speculation's exactness rests on it).
// Dimension glossary: M new rows (≤ MatrixVector.maxRows), C model dim, V vocab, L layers.
import Foundation
import Support
import Tensor

/// The cache and buffers of one batch-1 generation.
public final class DecodeSession {
    public let model: LlamaModel
    public let cache: KVCache
    /// Most rows one step takes.
    public let rows: Int
    let buffers: BlockActivations
    let scratch: BlockScratch
    let normed: Tensor                      // (M, C) final norm output
    let logitRows: Tensor                   // (M, V)
    let positions: UnsafeMutablePointer<Int32>
    let best: UnsafeMutablePointer<MatrixVector.Best>

    /// A session for `capacity` positions (prompt + new tokens + any verification overhang).
    public init(model: LlamaModel, capacity: Int, rows: Int = MatrixVector.maxRows) {
        precondition(rows >= 1 && rows <= MatrixVector.maxRows, "a decoding step takes 1…\(MatrixVector.maxRows) rows, got \(rows)")
        let c = model.config
        self.model = model
        self.rows = rows
        cache = KVCache(config: c, batch: 1, capacity: capacity)
        buffers = BlockActivations(config: c, batch: 1, length: rows, loraRanks: [:], keepsLogSumExp: false)
        scratch = BlockScratch(config: c, rows: rows, queries: rows, keys: capacity, parallelism: model.parallelism)
        normed = Tensor(zeros: [rows, c.hiddenSize])
        logitRows = Tensor(zeros: [rows, c.vocabSize])
        positions = .allocate(capacity: rows)
        positions.initialize(repeating: 0, count: rows)
        best = .allocate(capacity: rows)
        best.initialize(repeating: MatrixVector.Best(value: 0, index: 0, firstNonFinite: nil), count: rows)
    }

    deinit {
        positions.deallocate()
        best.deallocate()
    }

    /// The prompt through every layer (one batched pass, any length), leaving the last layer's output of its last
    /// position in `last` (C).
    public func prefill(_ prompt: [Int32], last: UnsafeMutablePointer<Float>) {
        precondition(!prompt.isEmpty && cache.length == 0, "prefill starts an empty session")
        let C = model.config.hiddenSize
        let h = Tensor(zeros: [1, prompt.count, C])
        model.embed(prompt, into: h.data)
        model.runLayers(from: 0, on: h, batch: 1, length: prompt.count, cache: cache)
        last.update(from: h.data + (prompt.count - 1) * C, count: C)
    }

    /// Runs `layers` in place on m rows of x (M, C) sitting at positions p…p+m−1, appending to those layers'
    /// caches, each of which must hold exactly p positions.
    public func run<S: Sequence<Int>>(_ layers: S, on x: UnsafeMutablePointer<Float>, rows m: Int, at p: Int) {
        place(rows: m, at: p)
        for l in layers {
            precondition(cache.lengths[l] == p, "layer \(l) holds \(cache.lengths[l]) positions, expected \(p)")
            model.blockForward(l, input: x, output: x, batch: 1, length: m, positions: positions, cache: cache,
                               saving: buffers, scratch: scratch)
            cache.advance(layer: l, by: m)
        }
    }

    /// Layer l's keys and values for m rows of x at positions p…, without the rest of the block (a token that left
    /// the stack early still needs them there); advances that layer.
    public func storeKeysValues(_ l: Int, from x: UnsafePointer<Float>, rows m: Int, at p: Int) {
        place(rows: m, at: p)
        model.storeKeysValues(l, input: x, rows: m, positions: positions, cache: cache, saving: buffers)
        cache.advance(layer: l, by: m)
    }

    /// Final norm + lm_head (or `head`, V′ ≤ V rows): logits (m, V′) of m rows of x (valid until the next call).
    public func logits(of x: UnsafePointer<Float>, rows m: Int, head: Weight? = nil) -> UnsafePointer<Float> {
        precondition(m >= 1 && m <= rows, "\(m) rows in a session of \(rows)")
        precondition(head.map { $0.rows <= model.config.vocabSize } ?? true, "a head larger than the vocabulary")
        model.logits(fromHidden: x, rows: m, into: logitRows.data, normed: normed.data, head: head)
        return UnsafePointer(logitRows.data)
    }

    /// Final norm + lm_head's (or `head`'s) argmax per row of x (m rows), without writing the logits (valid until
    /// the next call).
    public func argmax(of x: UnsafePointer<Float>, rows m: Int, head: Weight? = nil) -> UnsafeBufferPointer<MatrixVector.Best> {
        precondition(m >= 1 && m <= rows, "\(m) rows in a session of \(rows)")
        model.normalizeFinal(x, rows: m, into: normed.data)
        MatrixVector.argmax(normed.data, rows: m, weight: head ?? model.lmHead, into: best, parallelism: model.parallelism)
        return UnsafeBufferPointer(start: best, count: m)
    }

    /// Rows 0…m−1 of a step sit at positions p…p+m−1: the RoPE tables cover them and `positions` holds them.
    private func place(rows m: Int, at p: Int) {
        precondition(m >= 1 && m <= rows, "a step of \(m) rows in a session of \(rows)")
        model.rope.ensure(length: p + m)
        for i in 0..<m { positions[i] = Int32(p + i) }
    }
}

/// Where a generation's time went: the prompt's pass, then the one-token steps.
public struct DecodeTiming: Sendable {
    /// Prompt tokens and the seconds of their pass (up to the first new token's logits).
    public var prefillTokens = 0
    public var prefillSeconds = 0.0
    /// One-token steps after the first new token (each yields one more token) and their seconds.
    public var decodeTokens = 0
    public var decodeSeconds = 0.0
    public init() {}

    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(prefillTokens) / prefillSeconds : 0 }
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(decodeTokens) / decodeSeconds : 0 }
}
