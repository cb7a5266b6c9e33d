// lm_head and the next-token cross-entropy as one forward/backward unit. The loss's gradient is known as
// soon as a chunk of rows has its logits, so forward and backward run together chunk by chunk: the (N, V)
// logits never exist whole (200 MB at N = 1024, V = 49152). The gradients go where the caller says (the
// training pass's own scratch, consumed by its backward), never into a model's gradient buffers.
// Rows whose target is ignored (−100) cost nothing: they are left out before the GEMMs.
// With a teacher (`Distillation`), the teacher's logits of the same rows are made chunk by chunk beside the
// student's, from the teacher's final-normed rows and head, and the per-row loss becomes the distillation loss:
// neither model's (N, V) logits exist whole.
// The gradient is that of sum(losses) / normalizer, with the normalizer from the caller: the counted targets of
// the whole optimizer step (all micro-batches, later all ranks), so that accumulated gradients are exactly
// those of the step's mean loss however the counted targets fall into micro-batches.
// Dimension glossary: N rows (B·T), C model dim, C_t the teacher's, V vocab, M rows per chunk.
import Llama
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
    private var rowParts: [Double]        // (M, 3) per-row CE, KL and hidden term of a distilled chunk
    private var teacherInputs: Tensor?    // (M, C_t) the teacher's rows of this chunk, gathered (allocated on first use)
    private var teacherLogits: Tensor?    // (M, V) the teacher's logits of this chunk

    /// The rows of the teacher at the same positions, and how the student is scored against them.
    public struct Teacher {
        public let distillation: Distillation
        /// (N, C_t) the teacher's final-normed rows (`LlamaModel.finalNormedRows`).
        public let rows: UnsafePointer<Float>
        public init(distillation: Distillation, rows: UnsafePointer<Float>) {
            self.distillation = distillation
            self.rows = rows
        }
    }

    /// The parts of the last `forwardBackward` with a teacher (empty without one).
    public private(set) var distillationTally = DistillationTally()

    /// Bytes of this head's buffers: M rows each, never N (the teacher's are there once one has been used).
    public var scratchBytes: Int {
        4 * (inputs.count + logits.count + dInputs.count + (teacherInputs?.count ?? 0) + (teacherLogits?.count ?? 0))
            + 8 * (rowLoss.count + rowParts.count)
    }

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
        rowParts = [Double](repeating: 0, count: 3 * self.chunkRows)
    }

    /// About 48 MB of logits, in multiples of 64 rows when that leaves at least 64 (8 rows at least).
    public static func defaultChunkRows(vocab: Int) -> Int {
        let target = (12 << 20) / max(vocab, 1)
        return target >= 64 ? min(512, target / 64 * 64) : max(8, target)
    }

    /// Loss of x (N, C) through `weight` (V, C; Float32 or 16-bit, widened block by block inside the GEMMs) against
    /// `targets` (N; −100 = not counted), as a tally (sum and count of the counted rows' losses). Gradients are those
    /// of `lossWeight` · sum / `normalizer` (default: this call's counted rows, i.e. the mean; the weight is an early
    /// exit's share of the loss): dX (N, C) is overwritten (zero on uncounted rows) when given, dWeight (V, C) += when
    /// given. With a `teacher`, each row's loss is the distillation loss (see `Distillation`; its hidden term reads x
    /// as the student's final-normed rows) and `distillationTally` holds its parts. With a `profile`, the call is
    /// measured as the head's part, with the GEMMs' FLOPs.
    public func forwardBackward(_ x: UnsafePointer<Float>, rows n: Int, weight: Weight, targets: UnsafePointer<Int32>,
                                normalizer: Int? = nil, lossWeight: Double = 1, teacher: Teacher? = nil,
                                dX: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                                profile: StepProfile? = nil) -> LossTally {
        profile.measure(.head) {
            chunkByChunk(x, rows: n, weight: weight, targets: targets, normalizer: normalizer, lossWeight: lossWeight, teacher: teacher,
                         dX: dX, dWeight: dWeight, profile: profile)
        }
    }

    /// `forwardBackward`, one chunk of M counted rows at a time.
    private func chunkByChunk(_ x: UnsafePointer<Float>, rows n: Int, weight: Weight, targets: UnsafePointer<Int32>,
                              normalizer: Int?, lossWeight: Double, teacher: Teacher?,
                              dX: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?, profile: StepProfile?) -> LossTally {
        let C = dim, V = vocab
        var counted: [Int] = []
        for r in 0..<n where targets[r] != NextTokenLoss.ignoreIndex {
            precondition(targets[r] >= 0 && Int(targets[r]) < V, "target \(targets[r]) outside the vocabulary (\(V))")
            counted.append(r)
        }
        dX?.initialize(repeating: 0, count: n * C)
        var tally = LossTally()
        distillationTally = DistillationTally()
        guard !counted.isEmpty else { return tally }
        let wantsGradient = dX != nil || dWeight != nil
        precondition((normalizer ?? 1) > 0, "loss normalizer \(normalizer ?? 0) must be positive")
        let gradScale = Float(lossWeight / Double(normalizer ?? counted.count))
        let distilled = teacher.map { prepareTeacherBuffers($0.distillation) } ?? false
        var start = 0
        while start < counted.count {
            let m = min(chunkRows, counted.count - start)
            let rows = counted[start..<start + m]
            for (i, r) in rows.enumerated() { (inputs.data + i * C).update(from: x + r * C, count: C) }
            Gemm.linear(inputs.data, rows: m, weight: weight, into: logits.data, parallelism: parallelism)
            profile.addFLOPs(2 * Double(m * V * C))
            if let teacher, distilled { computeTeacherLogits(of: rows, teacher, profile: profile) }
            // Per-row loss; the logits row becomes its gradient, scaled by `gradScale`, in place.
            rows.withUnsafeBufferPointer { rowIndex in
                rowLoss.withUnsafeMutableBufferPointer { loss in
                    rowParts.withUnsafeMutableBufferPointer { parts in
                        let loss = loss.baseAddress!, parts = parts.baseAddress!
                        parallelism.ranges(m, minimumPerWorker: 4) { range in
                            for i in range {
                                let row = logits.data + i * V, y = targets[rowIndex[i]], d = wantsGradient ? row : nil
                                if let teacher {
                                    loss[i] = distillationLoss(row: i, teacher: teacher, teacherRow: rowIndex[i], distilled: distilled,
                                                               target: y, dLogits: d, gradScale: gradScale, parts: parts + 3 * i)
                                } else {
                                    loss[i] = Kernels.crossEntropyVectorized(row, vocab: V, target: y, dLogits: d, gradScale: gradScale)
                                }
                            }
                        }
                    }
                }
            }
            for i in 0..<m { tally.sum += rowLoss[i] }
            tally.count += m
            if teacher != nil {
                for i in 0..<m {
                    distillationTally.crossEntropy += rowParts[3 * i]
                    distillationTally.divergence += rowParts[3 * i + 1]
                    distillationTally.hidden += rowParts[3 * i + 2]
                }
                distillationTally.count += m
            }
            // logits = X·Wᵀ: dX = dLogits·W and dW += dLogitsᵀ·X.
            if let dX {
                Gemm.linearInputGradient(logits.data, rows: m, weight: weight, into: dInputs.data, parallelism: parallelism)
                profile.addFLOPs(2 * Double(m * V * C))
                if let teacher, teacher.distillation.hiddenWeight > 0 {
                    let scale = Float(teacher.distillation.hiddenWeight) * gradScale
                    for (i, r) in rows.enumerated() {
                        Self.addNormalizedSquaredErrorGradient(inputs.data + i * C, teacher.rows + r * C, count: C, scale: scale,
                                                               into: dInputs.data + i * C)
                    }
                }
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

    // MARK: distillation

    /// Allocates the teacher's chunk buffers once, when its logits are needed (α > 0); returns whether they are.
    private func prepareTeacherBuffers(_ distillation: Distillation) -> Bool {
        let t = distillation.teacher.config
        precondition(t.vocabSize == vocab, "teacher vocabulary \(t.vocabSize) ≠ \(vocab)")
        precondition(distillation.hiddenWeight == 0 || t.hiddenSize == dim, "teacher width \(t.hiddenSize) ≠ \(dim) with the hidden term")
        guard distillation.weight > 0 else { return false }
        if teacherInputs?.shape != [chunkRows, t.hiddenSize] { teacherInputs = Tensor(zeros: [chunkRows, t.hiddenSize]) }
        if teacherLogits == nil { teacherLogits = Tensor(zeros: [chunkRows, vocab]) }
        return true
    }

    /// Chunk row i's distillation loss (its logits row becoming its gradient when `dLogits` is that row), with
    /// its CE, KL and hidden term into `parts`. Without the teacher's logits (α = 0) the KL is 0 and not computed.
    private func distillationLoss(row i: Int, teacher: Teacher, teacherRow r: Int, distilled: Bool, target y: Int32,
                                  dLogits: UnsafeMutablePointer<Float>?, gradScale: Float,
                                  parts: UnsafeMutablePointer<Double>) -> Double {
        let settings = teacher.distillation, row = logits.data + i * vocab
        var loss: Double
        if distilled, let teacherLogits {
            (loss, parts[0], parts[1]) = Kernels.distillation(row, teacher: teacherLogits.data + i * vocab, vocab: vocab, target: y,
                                                              alpha: settings.weight, temperature: settings.temperature,
                                                              dLogits: dLogits, gradScale: gradScale)
        } else {
            loss = Kernels.crossEntropyVectorized(row, vocab: vocab, target: y, dLogits: dLogits, gradScale: gradScale)
            (parts[0], parts[1]) = (loss, 0)
        }
        parts[2] = settings.hiddenWeight > 0 ? Self.normalizedSquaredError(inputs.data + i * dim, teacher.rows + r * dim, count: dim) : 0
        return loss + settings.hiddenWeight * parts[2]
    }

    /// The teacher's logits (M, V) of this chunk's rows, from its final-normed rows and its head.
    private func computeTeacherLogits(of rows: ArraySlice<Int>, _ teacher: Teacher, profile: StepProfile?) {
        let model = teacher.distillation.teacher, Ct = model.config.hiddenSize
        guard let inputs = teacherInputs, let logits = teacherLogits else { return }
        for (i, r) in rows.enumerated() { (inputs.data + i * Ct).update(from: teacher.rows + r * Ct, count: Ct) }
        Gemm.linear(inputs.data, rows: rows.count, weight: model.lmHead, into: logits.data, parallelism: parallelism)
        profile.addFLOPs(2 * Double(rows.count * vocab * Ct))
    }

    /// The hidden term of one row: ‖h − t‖² / (‖t‖² + ε), summed in Double.
    static func normalizedSquaredError(_ h: UnsafePointer<Float>, _ t: UnsafePointer<Float>, count: Int) -> Double {
        var difference = 0.0, norm = 0.0
        for c in 0..<count {
            let d = Double(h[c]) - Double(t[c])
            difference += d * d
            norm += Double(t[c]) * Double(t[c])
        }
        return difference / (norm + Distillation.hiddenEpsilon)
    }

    /// dh += scale · 2·(h − t) / (‖t‖² + ε): the hidden term's gradient.
    static func addNormalizedSquaredErrorGradient(_ h: UnsafePointer<Float>, _ t: UnsafePointer<Float>, count: Int, scale: Float,
                                                  into dh: UnsafeMutablePointer<Float>) {
        var norm = 0.0
        for c in 0..<count { norm += Double(t[c]) * Double(t[c]) }
        let factor = Float(2 * Double(scale) / (norm + Distillation.hiddenEpsilon))
        for c in 0..<count { dh[c] += factor * (h[c] - t[c]) }
    }
}
