// lm_head and the next-token cross-entropy as one forward/backward unit. The loss's gradient is known as
// soon as a chunk of rows has its logits, so forward and backward run together chunk by chunk: the (N, V)
// logits never exist whole (200 MB at N = 1024, V = 49152). The gradients go where the caller says (the
// training pass's own scratch, consumed by its backward), never into a model's gradient buffers.
// Rows whose target is ignored (−100) cost nothing: they are left out before the GEMMs.
// The gradient is that of sum(losses) / normalizer, with the normalizer from the caller: the counted targets of
// the whole optimizer step (all micro-batches, later all ranks), so that accumulated gradients are exactly
// those of the step's mean loss however the counted targets fall into micro-batches.
// Dimension glossary: N rows (B·T), C model dim, V vocab, M rows per chunk.
import Tensor

/// Projects hidden rows to logits with a (V, C) matrix and scores them against next-token targets.
public final class LMHeadLoss {
    /// V, rows of the head matrix.
    public let vocab: Int
    /// C, the hidden width.
    public let dim: Int
    /// M, rows whose logits exist at once.
    public let chunkRows: Int
    /// Threads for the GEMMs and the per-row cross-entropy.
    public let parallelism: Parallelism
    private let inputs: Tensor            // (M, C) this chunk's counted rows of x, gathered
    private let logits: Tensor            // (M, V) logits, overwritten in place by their gradient
    private let dInputs: Tensor           // (M, C) gradient of the gathered rows
    private var rowLoss: [Double]         // (M) per-row losses, summed in order so the total is deterministic

    /// `chunkRows` defaults to about 48 MB of logits per chunk, in multiples of 64 rows (256 at V = 49152):
    /// smaller or ragged chunks cost OpenBLAS up to a third of its speed on these GEMMs.
    public init(vocab: Int, dim: Int, chunkRows: Int? = nil, parallelism: Parallelism) {
        self.vocab = vocab
        self.parallelism = parallelism
        self.dim = dim
        self.chunkRows = chunkRows ?? Self.defaultChunkRows(vocab: vocab)
        inputs = Tensor(zeros: [self.chunkRows, dim])
        logits = Tensor(zeros: [self.chunkRows, vocab])
        dInputs = Tensor(zeros: [self.chunkRows, dim])
        rowLoss = [Double](repeating: 0, count: self.chunkRows)
    }

    /// About 48 MB of logits, in multiples of 64 rows when that leaves at least 64 (8 rows at least).
    public static func defaultChunkRows(vocab: Int) -> Int {
        let target = (12 << 20) / max(vocab, 1)
        return target >= 64 ? min(512, target / 64 * 64) : max(8, target)
    }

    /// Loss of x (N, C) through `weight` (V, C; Float32 or 16-bit, widened block by block inside the GEMMs) against `targets` (N; −100 = not counted), as a tally (sum and
    /// count of the counted rows' losses). Gradients are those of `lossWeight` · sum / `normalizer` (default:
    /// this call's counted rows, i.e. the mean; the weight is an early exit's share of the loss): dX (N, C) is
    /// overwritten (zero on uncounted rows) when given, dWeight (V, C) += when given. With a `profile`, the GEMMs'
    /// FLOPs go to the part being measured.
    public func forwardBackward(_ x: UnsafePointer<Float>, rows n: Int, weight: Weight, targets: UnsafePointer<Int32>,
                                normalizer: Int? = nil, lossWeight: Double = 1, dX: UnsafeMutablePointer<Float>?,
                                dWeight: UnsafeMutablePointer<Float>?, profile: StepProfile? = nil) -> LossTally {
        let C = dim, V = vocab
        var counted: [Int] = []
        for r in 0..<n where targets[r] != NextTokenLoss.ignoreIndex {
            precondition(targets[r] >= 0 && Int(targets[r]) < V, "target \(targets[r]) outside the vocabulary (\(V))")
            counted.append(r)
        }
        dX?.initialize(repeating: 0, count: n * C)
        var tally = LossTally()
        guard !counted.isEmpty else { return tally }
        let wantsGradient = dX != nil || dWeight != nil
        precondition((normalizer ?? 1) > 0, "loss normalizer \(normalizer ?? 0) must be positive")
        let gradScale = Float(lossWeight / Double(normalizer ?? counted.count))
        var start = 0
        while start < counted.count {
            let m = min(chunkRows, counted.count - start)
            let rows = counted[start..<start + m]
            for (i, r) in rows.enumerated() { (inputs.data + i * C).update(from: x + r * C, count: C) }
            Gemm.linear(inputs.data, rows: m, weight: weight, into: logits.data, parallelism: parallelism)
            profile.addFLOPs(2 * Double(m * V * C))
            // Per-row cross-entropy; the logits row becomes (softmax − onehot) / count in place.
            rows.withUnsafeBufferPointer { rowIndex in
                rowLoss.withUnsafeMutableBufferPointer { loss in
                    let loss = loss.baseAddress!, logits = logits.data
                    parallelism.ranges(m, minimumPerWorker: 4) { range in
                        for i in range {
                            let row = logits + i * V
                            loss[i] = Kernels.crossEntropyVectorized(row, vocab: V, target: targets[rowIndex[i]],
                                                                     dLogits: wantsGradient ? row : nil, gradScale: gradScale)
                        }
                    }
                }
            }
            for i in 0..<m { tally.sum += rowLoss[i] }
            tally.count += m
            // logits = X·Wᵀ: dX = dLogits·W and dW += dLogitsᵀ·X.
            if let dX {
                Gemm.linearInputGradient(logits.data, rows: m, weight: weight, into: dInputs.data, parallelism: parallelism)
                profile.addFLOPs(2 * Double(m * V * C))
                for (i, r) in rows.enumerated() { (dX + r * C).update(from: dInputs.data + i * C, count: C) }
            }
            if let dWeight {
                Gemm.multiply(transA: true, transB: false, m: V, n: C, k: m, a: logits.data, lda: V, b: inputs.data, ldb: C,
                              beta: 1, c: dWeight, ldc: C, parallelism: parallelism)
                profile.addFLOPs(2 * Double(m * V * C))
            }
            start += m
        }
        return tally
    }
}
