// Distillation (Distillation, LMHeadLoss with a teacher, LlamaTrainingPass with `distillation:`): the row kernel
// against the definition in Double; the head and the whole pass against finite differences of a loss computed
// independently from full logits; α = 0 against the plain cross-entropy bit for bit; micro-batches against the
// whole batch; and the stories260K student (layers 2-3 cut) against the PyTorch float64 reference
// (Tests/Fixtures/reference/stories260K/distillation.*).
import Checkpoint
import Foundation
import Llama
import Support
import Tensor
import TestSupport
import Training
import XCTest

final class DistillationTests: XCTestCase {
    // MARK: the definition, in Double

    /// One row's (1 − α)·CE + α·τ²·KL(softmax(t/τ) ‖ softmax(z/τ)) and its gradient, from log-softmaxes in Double.
    static func referenceRow(_ z: UnsafePointer<Float>, _ t: UnsafePointer<Float>, vocab V: Int, target y: Int, alpha: Double,
                             tau: Double) -> (loss: Double, crossEntropy: Double, divergence: Double, gradient: [Double]) {
        func logSoftmax(_ x: UnsafePointer<Float>, _ scale: Double) -> [Double] {
            let v = (0..<V).map { Double(x[$0]) * scale }, m = v.max()!
            let lse = m + log(v.reduce(0) { $0 + exp($1 - m) })
            return v.map { $0 - lse }
        }
        let logS = logSoftmax(z, 1), logQ = logSoftmax(z, 1 / tau), logP = logSoftmax(t, 1 / tau)
        let ce = -logS[y]
        var kl = 0.0
        for j in 0..<V { kl += exp(logP[j]) * (logP[j] - logQ[j]) }
        let gradient = (0..<V).map { j in
            (1 - alpha) * (exp(logS[j]) - (j == y ? 1 : 0)) + alpha * tau * (exp(logQ[j]) - exp(logP[j]))
        }
        return ((1 - alpha) * ce + alpha * tau * tau * kl, ce, kl, gradient)
    }

    /// The pass's loss from full logits (N, V) and final-normed rows (N, C), in Double: Σ over counted rows / count.
    static func referenceLoss(student z: Tensor, teacher t: Tensor, targets: [Int32], vocab V: Int, distillation d: Distillation,
                              studentRows hs: Tensor? = nil, teacherRows ht: Tensor? = nil) -> Double {
        var sum = 0.0, count = 0
        for (r, y) in targets.enumerated() where y != NextTokenLoss.ignoreIndex {
            sum += referenceRow(z.data + r * V, t.data + r * V, vocab: V, target: Int(y), alpha: d.weight, tau: d.temperature).loss
            if d.hiddenWeight > 0, let hs, let ht {
                let C = hs.count / targets.count
                var difference = 0.0, norm = 0.0
                for c in 0..<C {
                    let a = Double(hs[r * C + c]), b = Double(ht[r * C + c])
                    difference += (a - b) * (a - b)
                    norm += b * b
                }
                sum += d.hiddenWeight * difference / (norm + Distillation.hiddenEpsilon)
            }
            count += 1
        }
        return sum / Double(count)
    }

    static let settings: [(alpha: Double, tau: Double)] = [(0.5, 1), (0.5, 2), (1, 1), (1, 2)]

    // MARK: the row kernel

    func testRowKernelMatchesTheDefinition() {
        let V = 1003   // tails on every lane width
        let z = GradientCheck.tensor([V], seed: 40, scale: 8), t = GradientCheck.tensor([V], seed: 41, scale: 6)
        let d = Tensor(zeros: [V])
        var worstLoss = 0.0, worstGradient = 0.0
        for (alpha, tau) in Self.settings {
            let r = Kernels.distillation(z.data, teacher: t.data, vocab: V, target: 17, alpha: alpha, temperature: tau,
                                         dLogits: d.data, gradScale: 0.5)
            let e = Self.referenceRow(z.data, t.data, vocab: V, target: 17, alpha: alpha, tau: tau)
            worstLoss = max(worstLoss, abs(r.loss - e.loss), abs(r.crossEntropy - e.crossEntropy), abs(r.divergence - e.divergence))
            let scale = e.gradient.map(abs).max()!
            for j in 0..<V { worstGradient = max(worstGradient, abs(Double(d[j]) - 0.5 * e.gradient[j]) / (0.5 * scale)) }
            XCTAssertGreaterThan(r.divergence, 0.1, "α \(alpha), τ \(tau): the teacher differs")
        }
        assertPinned("kernel.distillation", worstLoss, within: Tolerance.distillationRowLoss, "loss and parts vs Double")
        assertPinned("kernel.distillation", worstGradient, within: Tolerance.distillationRowGradient, "gradient vs Double, relative")
    }

    func testRowKernelWithoutWeightIsTheCrossEntropyKernel() {
        let V = 1003
        let z = GradientCheck.tensor([V], seed: 42, scale: 8), t = GradientCheck.tensor([V], seed: 43, scale: 6)
        let plain = Tensor(zeros: [V])
        let ce = Kernels.crossEntropyVectorized(z.data, vocab: V, target: 5, dLogits: plain.data, gradScale: 0.25)
        for tau in [1.0, 2.0] {
            let inPlace = z.copy()
            let r = Kernels.distillation(inPlace.data, teacher: t.data, vocab: V, target: 5, alpha: 0, temperature: tau,
                                         dLogits: inPlace.data, gradScale: 0.25)
            XCTAssertEqual(r.loss, ce, "τ \(tau)")
            XCTAssertEqual(r.crossEntropy, ce, "τ \(tau)")
            assertEqualElements(inPlace.array, plain.array, "τ \(tau): the gradient, in place")
        }
    }

    func testAStudentEqualToItsTeacherHasNoDivergence() {
        let V = 1003
        let z = GradientCheck.tensor([V], seed: 44, scale: 8)
        let d = Tensor(zeros: [V]), plain = Tensor(zeros: [V])
        for (alpha, tau) in Self.settings {
            let r = Kernels.distillation(z.data, teacher: z.data, vocab: V, target: 9, alpha: alpha, temperature: tau,
                                         dLogits: d.data, gradScale: 1)
            XCTAssertEqual(r.divergence, 0, "α \(alpha), τ \(tau)")
            // Only the CE's share of the gradient is left.
            _ = Kernels.crossEntropyVectorized(z.data, vocab: V, target: 9, dLogits: plain.data, gradScale: Float(1 - alpha))
            assertEqualElements(d.array, plain.array, "α \(alpha), τ \(tau): gradient")
        }
    }

    // MARK: the head

    /// A teacher's rows and head, and the `Distillation` that scores a student of `student` against them.
    static func teacher(width: Int, vocab V: Int, alpha: Double, tau: Double, hiddenWeight: Double = 0,
                        studentWidth: Int) throws -> Distillation {
        let config = LlamaConfig(hiddenSize: width, intermediateSize: 7, numHiddenLayers: 1, numAttentionHeads: 1, headDim: width,
                                 vocabSize: V, tieWordEmbeddings: true)
        let model = LlamaModel.random(config: config, seed: 50)
        for i in 0..<model.embedding.count { model.embedding.float32![i] *= 60 }   // logits of order 1
        let student = LlamaConfig(hiddenSize: studentWidth, intermediateSize: 7, numHiddenLayers: 1, numAttentionHeads: 1,
                                  headDim: studentWidth, vocabSize: V)
        return try Distillation(teacher: model, student: student, weight: alpha, temperature: tau, hiddenWeight: hiddenWeight)
    }

    func checkHead(alpha: Double, tau: Double, teacherWidth Ct: Int, hiddenWeight: Double, line: UInt = #line) throws {
        let n = 7, C = 5, V = 11
        let targets: [Int32] = [3, -100, 10, 0, -100, 7, 3]
        let head = LMHeadLoss(vocab: V, dim: C, chunkRows: 2, parallelism: .allCores)   // several chunks, one of them partial
        let x = GradientCheck.tensor([n, C], seed: 34, scale: 2), weight = GradientCheck.tensor([V, C], seed: 35)
        let teacherRows = GradientCheck.tensor([n, Ct], seed: 36, scale: 2)
        let distillation = try Self.teacher(width: Ct, vocab: V, alpha: alpha, tau: tau, hiddenWeight: hiddenWeight, studentWidth: C)
        let teacher = LMHeadLoss.Teacher(distillation: distillation, rows: teacherRows.data)
        func loss() -> Double {
            head.forwardBackward(x.data, rows: n, weight: Weight(weight), targets: targets, teacher: teacher, dX: nil, dWeight: nil).mean
        }
        let dx = Tensor(shape: [n, C], repeating: 7), dWeight = Tensor(zeros: [V, C])
        let tally = head.forwardBackward(x.data, rows: n, weight: Weight(weight), targets: targets, teacher: teacher,
                                         dX: dx.data, dWeight: dWeight.data)
        XCTAssertEqual(tally.count, 5, line: line)
        XCTAssertEqual(head.distillationTally.count, 5, line: line)
        let parts = head.distillationTally
        XCTAssertEqual(tally.sum, (1 - alpha) * parts.crossEntropy + alpha * tau * tau * parts.divergence + hiddenWeight * parts.hidden,
                       accuracy: 1e-9, "the parts make the total", line: line)
        // The same loss from whole logits of both, in Double.
        let z = Tensor(zeros: [n, V]), t = Tensor(zeros: [n, V])
        Gemm.linear(x.data, rows: n, weight: Weight(weight), into: z.data, parallelism: .allCores)
        Gemm.linear(teacherRows.data, rows: n, weight: distillation.teacher.lmHead, into: t.data, parallelism: .allCores)
        let expected = Self.referenceLoss(student: z, teacher: t, targets: targets, vocab: V, distillation: distillation,
                                          studentRows: x, teacherRows: teacherRows)
        assertPinned("distillation.loss", abs(tally.mean - expected), within: Tolerance.distillationLoss, "head vs whole logits in Double",
                     line: line)
        for c in 0..<C { XCTAssertEqual(dx[1 * C + c], 0, "ignored row gets no gradient", line: line) }
        let what = "α \(alpha), τ \(tau), C_t \(Ct), β \(hiddenWeight)"
        GradientCheck.assertClose("dX, \(what)", parameter: x.data, count: x.count, analytic: dx.data, loss: loss, line: line)
        GradientCheck.assertClose("dWeight, \(what)", parameter: weight.data, count: weight.count, analytic: dWeight.data, loss: loss, line: line)
    }

    func testHeadGradientsWithATeacherOfAnotherWidth() throws {
        for (alpha, tau) in Self.settings { try checkHead(alpha: alpha, tau: tau, teacherWidth: 6, hiddenWeight: 0) }
    }

    func testHeadGradientsWithTheHiddenTerm() throws {
        try checkHead(alpha: 0.5, tau: 2, teacherWidth: 5, hiddenWeight: 0.7)
        try checkHead(alpha: 0, tau: 1, teacherWidth: 5, hiddenWeight: 1.5)   // the hidden term beside plain CE
    }

    func testTheHeadKeepsOnlyChunkSizedBuffers() throws {
        // N = 40 chunks of M rows: what the head holds after a distilled call depends on M, never on N.
        let C = 8, V = 300, M = 16, n = 40 * M
        let head = LMHeadLoss(vocab: V, dim: C, chunkRows: M, parallelism: .allCores)
        let before = head.scratchBytes
        let distillation = try Self.teacher(width: 12, vocab: V, alpha: 0.5, tau: 2, studentWidth: C)
        let x = GradientCheck.tensor([n, C], seed: 37), rows = GradientCheck.tensor([n, 12], seed: 38)
        let weight = GradientCheck.tensor([V, C], seed: 39), dx = Tensor(zeros: [n, C])
        let targets = (0..<n).map { Int32($0 % V) }
        _ = head.forwardBackward(x.data, rows: n, weight: Weight(weight), targets: targets,
                                 teacher: LMHeadLoss.Teacher(distillation: distillation, rows: rows.data), dX: dx.data, dWeight: nil)
        XCTAssertEqual(before, 4 * M * (2 * C + V) + 8 * 4 * M)
        XCTAssertEqual(head.scratchBytes, before + 4 * M * (12 + V), "the teacher's chunk rows and chunk logits, nothing more")
        XCTAssertLessThan(head.scratchBytes, 4 * n * V / 10)
    }

    func testDistillationRefusesBadSettingsAndAnIncompatibleTeacher() throws {
        let V = 11
        XCTAssertThrowsError(try Self.teacher(width: 5, vocab: V, alpha: 1.5, tau: 1, studentWidth: 5))
        XCTAssertThrowsError(try Self.teacher(width: 5, vocab: V, alpha: 0.5, tau: 0, studentWidth: 5))
        XCTAssertThrowsError(try Self.teacher(width: 5, vocab: V, alpha: 0.5, tau: 1, hiddenWeight: -1, studentWidth: 5))
        XCTAssertThrowsError(try Self.teacher(width: 6, vocab: V, alpha: 0.5, tau: 1, hiddenWeight: 1, studentWidth: 5)) { error in
            XCTAssertTrue("\(error)".contains("hidden size 6 differs from the student's 5"), "\(error)")
        }
        let teacher = try Self.teacher(width: 5, vocab: V, alpha: 0.5, tau: 1, studentWidth: 5).teacher
        let other = LlamaConfig(hiddenSize: 5, intermediateSize: 7, numHiddenLayers: 1, numAttentionHeads: 1, vocabSize: V + 1)
        XCTAssertThrowsError(try Distillation(teacher: teacher, student: other, weight: 0.5, temperature: 1)) { error in
            XCTAssertEqual("\(error)", "teacher: vocabulary of 11 tokens, the student's has 12")
        }
    }
}
