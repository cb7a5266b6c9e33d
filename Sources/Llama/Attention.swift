// Causal grouped-query attention, computed blockwise (flash-attention style): query head h reads kv head h / (H/G).
// Queries go in blocks of Tq rows; each block meets the keys in blocks of Tk with an online softmax (a running
// max and sum per row, by which what earlier key blocks added is rescaled), so no (T, S) score matrix exists:
// one Tq × Tk tile per thread, and memory grows linearly with T. Key blocks wholly above the causal diagonal
// are never computed. Tile products are GEMMs that read the heads in place through leading dimensions.
// Forward/backward pair: for the backward the forward keeps, when asked, each query's log-sum-exp of its
// scaled scores (B, H, T) instead of the probabilities (B, H, T, S); the backward recomputes each tile's
// probabilities from q, k and it (one more q·kᵀ per tile), and reads the forward's output for
// rowsum(dOut ⊙ out). It also reads q, k and v, which the caller keeps.
// Dimension glossary: B batch, T queries, S keys (past + T), H query heads, G kv heads, D head dim,
// Tq × Tk one tile (queries × keys).
// An inference forward of at most 16 queries (decoding) takes each query on its own instead (forwardQueryByQuery).
import Foundation
import Tensor

/// Scaled dot-product attention with a causal mask.
public enum Attention {
    /// The tile shape: Tq query rows by Tk keys.
    public struct Tiles: Sendable, Equatable {
        public let queries: Int
        public let keys: Int

        public init(queries: Int, keys: Int) {
            precondition(queries >= 1 && keys >= 1, "attention tiles must be at least 1 × 1, got \(queries) × \(keys)")
            self.queries = queries
            self.keys = keys
        }

        /// 64 × 128: a tile and its K and V blocks (32 KB each at D = 64) stay in L2, and the tile GEMMs
        /// are still large enough for OpenBLAS's kernels.
        public static let standard = Tiles(queries: 64, keys: 128)
    }

    /// Floats of scratch one call (forward or backward) needs for T queries over S keys: per concurrent head,
    /// two tiles (scores or probabilities, and their gradient) and two floats per query row (running max and
    /// sum, or rowsum(dOut ⊙ out)). Independent of T beyond one tile.
    public static func scoreScratchCount(queries t: Int, keys s: Int, parallelism: Parallelism, tiles: Tiles = .standard) -> Int {
        perThread(queries: t, keys: s, tiles: tiles) * parallelism.threads
    }

    /// Floating-point operations of the products over the causal triangle (what a dense kernel would compute
    /// only half of): per head, each (query, visible key) pair costs D multiply-adds in each product; forward has
    /// two (q·kᵀ, p·v), backward five (q·kᵀ again, dOut·vᵀ, dS·k, dSᵀ·q, pᵀ·dOut). Query i sits at q0 + i.
    public static func flops(batch b: Int, queries t: Int, firstQueryPosition q0: Int, heads H: Int, headDim D: Int,
                             pass: StepProfile.Pass) -> Double {
        let pairs = Double(t) * Double(q0) + Double(t) * Double(t + 1) / 2
        return Double(pass == .forward ? 2 : 5) * 2 * Double(b * H * D) * pairs
    }

    private static func perThread(queries t: Int, keys s: Int, tiles: Tiles) -> Int {
        let tq = min(t, tiles.queries), tk = min(s, tiles.keys)
        let tiled = 2 * tq * tk + 2 * tq
        return t <= queryByQueryLimit ? max(tiled, s) : tiled
    }

    /// Most queries an inference forward takes one by one (decoding: a token, or a verification pass of K+1).
    static let queryByQueryLimit = MatrixVector.maxRows

    /// Decoding's attention: each query of each head on its own over every key it sees (pk_attention_query), so
    /// that a query's output depends only on it, those keys and their count, not on the queries beside it: a
    /// verification row equals the one-token step. Scratch: S floats per worker.
    private static func forwardQueryByQuery(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                            keyBatchStride: Int, batch b: Int, queries t: Int, keyCount s: Int,
                                            firstQueryPosition q0: Int, heads H: Int, kvHeads G: Int, headDim D: Int,
                                            scratch: UnsafeMutablePointer<Float>, stride: Int, out: UnsafeMutablePointer<Float>,
                                            parallelism: Parallelism) {
        let scale = Float(1.0 / Double(D).squareRoot())
        let group = H / G, jobs = b * t * H
        // Even a pool's hand-over costs more than a few short heads: split only when there is real work.
        let workers = min(parallelism.threads, jobs, max(1, jobs * min(s, q0 + t) * D / (1 << 13)))
        let run = { (w: Int) in
            var job = w
            while job < jobs {
                let hi = job % H, row = job / H, bi = row / t, i = row % t, g = hi / group
                let at = (bi * t + i) * H * D + hi * D
                Kernels.attentionQuery(q + at, keys: keys + bi * keyBatchStride + g * D, values: values + bi * keyBatchStride + g * D,
                                       ld: G * D, count: min(s, q0 + i + 1), dim: D, scale: scale,
                                       scores: scratch + w * stride, into: out + at)
                job += workers
            }
        }
        WorkerPool.shared(parallelism).run(parts: workers, run)
    }

    /// out (B·T, H·D) = softmax(scale · q kᵀ + causal mask) v per head.
    /// - q: (B·T, H·D) after RoPE. keys/values: per batch element, S rows of G·D (batch stride given). Query i sits
    ///   at position q0 + i and sees keys 0…q0 + i.
    /// - scratch: `scoreScratchCount(queries:keys:parallelism:tiles:)` floats.
    /// - logSumExp: when non-nil, (B, H, T) log Σ exp(scale · q kᵀ) over each query's visible keys, kept for the
    ///   backward pass.
    public static func forward(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                               keyBatchStride: Int, batch b: Int, queries t: Int, keyCount s: Int, firstQueryPosition q0: Int,
                               heads H: Int, kvHeads G: Int, headDim D: Int, scratch: UnsafeMutablePointer<Float>,
                               logSumExp: UnsafeMutablePointer<Float>?, out: UnsafeMutablePointer<Float>,
                               parallelism: Parallelism, tiles: Tiles = .standard) {
        guard t > 0, s > 0 else { return }
        let stride = perThread(queries: t, keys: s, tiles: tiles)
        if logSumExp == nil && t <= queryByQueryLimit {
            forwardQueryByQuery(q: q, keys: keys, values: values, keyBatchStride: keyBatchStride, batch: b, queries: t, keyCount: s,
                                firstQueryPosition: q0, heads: H, kvHeads: G, headDim: D, scratch: scratch, stride: stride,
                                out: out, parallelism: parallelism)
            return
        }
        let scale = Float(1.0 / Double(D).squareRoot())
        let group = H / G
        let total = b * H
        let tq = min(t, tiles.queries), tk = min(s, tiles.keys)
        // One head per thread at a time: tile GEMMs are too small to split, so each runs single-threaded.
        let workers = min(parallelism.threads, total)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let tile = scratch + w * stride                     // (Tq, Tk) scores, then exp(scores − max)
            let rowMax = tile + tq * tk, rowSum = rowMax + tq   // (Tq) each
            var job = w
            while job < total {
                let bi = job / H, hi = job % H, g = hi / group
                let kp = keys + bi * keyBatchStride + g * D, vp = values + bi * keyBatchStride + g * D
                for qb in Swift.stride(from: 0, to: t, by: tq) {
                    let rows = min(tq, t - qb)
                    let qp = q + (bi * t + qb) * H * D + hi * D
                    let op = out + (bi * t + qb) * H * D + hi * D
                    // Keys after the block's last query are masked for every row of it: never computed.
                    let keyEnd = min(s, q0 + qb + rows)
                    rowMax.update(repeating: -.infinity, count: rows)
                    rowSum.update(repeating: 0, count: rows)
                    for kb in Swift.stride(from: 0, to: keyEnd, by: tk) {
                        let cols = min(tk, keyEnd - kb), first = kb == 0
                        Gemm.multiply(transA: false, transB: true, m: rows, n: cols, k: D, a: qp, lda: H * D, b: kp + kb * G * D,
                                      ldb: G * D, c: tile, ldc: tk, parallelism: .serial)
                        Kernels.attentionTileSoftmax(tile, rows: rows, cols: cols, ld: tk, firstVisible: q0 + qb + 1 - kb, scale: scale,
                                                     rowMax: rowMax, rowSum: rowSum, accumulator: first ? nil : op,
                                                     ldAccumulator: H * D, dim: D)
                        Gemm.multiply(transA: false, transB: false, m: rows, n: D, k: cols, a: tile, lda: tk, b: vp + kb * G * D,
                                      ldb: G * D, beta: first ? 0 : 1, c: op, ldc: H * D, parallelism: .serial)
                    }
                    // The accumulator holds Σ exp(score − max)·v: divide by the row's sum.
                    for i in 0..<rows {
                        let inverse = Float(1 / Double(rowSum[i]))
                        let row = op + i * H * D
                        for d in 0..<D { row[d] *= inverse }
                    }
                    if let lse = logSumExp.map({ $0 + (bi * H + hi) * t + qb }) {
                        for i in 0..<rows { lse[i] = Float(Double(rowMax[i]) + log(Double(rowSum[i]))) }
                    }
                }
                job += workers
            }
        }
    }

    /// Backward of `forward` from dOut (B·T, H·D): dq (B·T, H·D), dKeys and dValues (same layout as keys and
    /// values: per batch element S rows of G·D at `keyBatchStride`) are overwritten. q, keys, values are those
    /// the forward read (after RoPE), out (B·T, H·D) what it wrote and logSumExp (B, H, T) what it kept.
    /// `scratch` holds `scoreScratchCount(queries:keys:parallelism:tiles:)` floats; `tiles` need not be the
    /// forward's.
    /// Work is split by (batch, kv head) so that the heads sharing a kv head add into its dK, dV on one thread.
    public static func backward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, keys: UnsafePointer<Float>,
                                values: UnsafePointer<Float>, out: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>,
                                keyBatchStride: Int, batch b: Int, queries t: Int, keyCount s: Int, firstQueryPosition q0: Int,
                                heads H: Int, kvHeads G: Int, headDim D: Int, scratch: UnsafeMutablePointer<Float>,
                                dq: UnsafeMutablePointer<Float>, dKeys: UnsafeMutablePointer<Float>,
                                dValues: UnsafeMutablePointer<Float>, parallelism: Parallelism, tiles: Tiles = .standard) {
        guard s > 0 else { return }
        let scale = Float(1.0 / Double(D).squareRoot())
        let group = H / G
        let total = b * G
        let tq = max(1, min(t, tiles.queries)), tk = min(s, tiles.keys), stride = perThread(queries: t, keys: s, tiles: tiles)
        // Each thread runs its GEMMs serially: two threads each splitting their products again would only
        // contend (measured 16× slower on 2 cores).
        let workers = min(parallelism.threads, total)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let tile = scratch + w * stride     // (Tq, Tk) scores, then P
            let dTile = tile + tq * tk          // (Tq, Tk) dP = dOut·Vᵀ, then dS (the gradient of the raw scores q·kᵀ)
            let delta = dTile + tq * tk         // (Tq) rowsum(dOut ⊙ out)
            var job = w
            while job < total {
                let bi = job / G, g = job % G
                let kp = keys + bi * keyBatchStride + g * D, vp = values + bi * keyBatchStride + g * D
                let dk = dKeys + bi * keyBatchStride + g * D, dv = dValues + bi * keyBatchStride + g * D
                for r in 0..<s {
                    (dk + r * G * D).update(repeating: 0, count: D)
                    (dv + r * G * D).update(repeating: 0, count: D)
                }
                for hi in g * group..<(g + 1) * group {
                    let lse = logSumExp + (bi * H + hi) * t
                    for qb in Swift.stride(from: 0, to: t, by: tq) {
                        let rows = min(tq, t - qb), at = (bi * t + qb) * H * D + hi * D
                        let qp = q + at, dop = dOut + at, op = out + at, dqp = dq + at
                        // The softmax backward's rowsum(P ⊙ dP) over all of a row's keys, which no single tile sees,
                        // equals rowsum(dOut ⊙ out) since out = P·V.
                        Kernels.rowDot(dop, lda: H * D, op, ldb: H * D, rows: rows, cols: D, into: delta)
                        let keyEnd = min(s, q0 + qb + rows)
                        for kb in Swift.stride(from: 0, to: keyEnd, by: tk) {
                            let cols = min(tk, keyEnd - kb)
                            let kj = kp + kb * G * D, vj = vp + kb * G * D, dkj = dk + kb * G * D, dvj = dv + kb * G * D
                            // Recompute the tile's P = exp(scale · q·kᵀ − lse) and dP = dOut·Vᵀ; then dS = P ⊙ (dP − delta) · scale.
                            Gemm.multiply(transA: false, transB: true, m: rows, n: cols, k: D, a: qp, lda: H * D, b: kj, ldb: G * D,
                                          c: tile, ldc: tk, parallelism: .serial)
                            Gemm.multiply(transA: false, transB: true, m: rows, n: cols, k: D, a: dop, lda: H * D, b: vj, ldb: G * D,
                                          c: dTile, ldc: tk, parallelism: .serial)
                            Kernels.attentionTileBackward(tile, dTile, rows: rows, cols: cols, ld: tk, firstVisible: q0 + qb + 1 - kb,
                                                          scale: scale, logSumExp: lse + qb, delta: delta)
                            // out = P·V: dV (cols, D) += Pᵀ·dOut.
                            Gemm.multiply(transA: true, transB: false, m: cols, n: D, k: rows, a: tile, lda: tk, b: dop, ldb: H * D,
                                          beta: 1, c: dvj, ldc: G * D, parallelism: .serial)
                            // q·kᵀ: dQ (rows, D) += dS·K (the block's first tile overwrites) and dK (cols, D) += dSᵀ·Q.
                            Gemm.multiply(transA: false, transB: false, m: rows, n: D, k: cols, a: dTile, lda: tk, b: kj, ldb: G * D,
                                          beta: kb == 0 ? 0 : 1, c: dqp, ldc: H * D, parallelism: .serial)
                            Gemm.multiply(transA: true, transB: false, m: cols, n: D, k: rows, a: dTile, lda: tk, b: qp, ldb: H * D,
                                          beta: 1, c: dkj, ldc: G * D, parallelism: .serial)
                        }
                    }
                }
                job += workers
            }
        }
    }
}
