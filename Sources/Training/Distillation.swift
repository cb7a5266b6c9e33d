// Knowledge distillation (Hinton et al., 2015) in the training pass: a teacher model (the original, in its stored
// dtype) runs on each micro-batch, and the student's last exit is scored against both the labels and the teacher.
// Per counted row r, with student logits z_s, teacher logits z_t, label y_r, the distillation weight α, the
// temperature τ and the hidden weight β:
//   loss_r = (1 − α)·CE(z_s, y_r) + α·τ²·KL(softmax(z_t/τ) ‖ softmax(z_s/τ)) + β·‖h_s − h_t‖² / (‖h_t‖² + ε)
//   ∂loss_r/∂z_s = (1 − α)·(softmax(z_s) − onehot(y_r)) + α·τ·(softmax(z_s/τ) − softmax(z_t/τ))
// h_s and h_t are the last hidden states in transformers' sense (`last_hidden_state`): each model's final-normed
// rows, what its lm_head reads. τ² keeps the KL's gradient on the scale of the CE's whatever τ. The loss is summed
// over the counted rows and divided by the same normalizer as the plain cross-entropy (the step's counted targets).
// The teacher's logits exist one chunk of rows at a time (`LMHeadLoss`), like the student's.
// Dimension glossary: N rows (B·T), C student width, C_t teacher width, V vocab.
import Checkpoint
import Llama
import Support

/// A teacher and how much the student learns from it.
public struct Distillation {
    /// The model the student learns from; only its forward runs (no gradient buffer is needed or touched).
    public let teacher: LlamaModel
    /// α ∈ [0, 1]: the KL term's share (1 − α is the cross-entropy's).
    public let weight: Double
    /// τ > 0: both distributions are softened by it inside the KL.
    public let temperature: Double
    /// β ≥ 0: the weight of the normalised hidden-state MSE (0: off).
    public let hiddenWeight: Double

    /// ε in the hidden term's denominator, so that a zero teacher row is defined (‖h_t‖² is about C otherwise).
    public static let hiddenEpsilon = 1e-6

    /// Checks the settings and that `teacher` fits a student of config `student`: the same vocabulary, and the same
    /// width where the hidden term is on. Errors name the setting or the teacher.
    public init(teacher: LlamaModel, student: LlamaConfig, weight: Double, temperature: Double, hiddenWeight: Double = 0) throws {
        guard weight >= 0 && weight <= 1 else { throw PruneError("distillation weight", "must be in [0, 1], got \(weight)") }
        guard temperature > 0 && temperature.isFinite else {
            throw PruneError("distillation temperature", "must be positive and finite, got \(temperature)")
        }
        guard hiddenWeight >= 0 && hiddenWeight.isFinite else {
            throw PruneError("distillation hidden weight", "must be finite and ≥ 0, got \(hiddenWeight)")
        }
        let t = teacher.config
        guard t.vocabSize == student.vocabSize else {
            throw PruneError("teacher", "vocabulary of \(t.vocabSize) tokens, the student's has \(student.vocabSize)")
        }
        guard hiddenWeight == 0 || t.hiddenSize == student.hiddenSize else {
            throw PruneError("teacher", "hidden size \(t.hiddenSize) differs from the student's \(student.hiddenSize): "
                             + "the hidden-state term compares the two rows and needs equal widths")
        }
        self.teacher = teacher
        self.weight = weight
        self.temperature = temperature
        self.hiddenWeight = hiddenWeight
    }
}

/// The distilled loss's parts over the counted rows, unweighted: Σ CE, Σ KL and Σ normalised hidden MSE. The total
/// is (1 − α)·CE + α·τ²·KL + β·hidden.
public struct DistillationTally: Sendable {
    public var crossEntropy: Double = 0
    public var divergence: Double = 0
    public var hidden: Double = 0
    public var count: Int = 0
    public init() {}

    /// The parts as means over the counted rows.
    public var meanCrossEntropy: Double { count > 0 ? crossEntropy / Double(count) : .nan }
    public var meanDivergence: Double { count > 0 ? divergence / Double(count) : .nan }
    public var meanHidden: Double { count > 0 ? hidden / Double(count) : .nan }

    public mutating func add(_ other: DistillationTally) {
        crossEntropy += other.crossEntropy
        divergence += other.divergence
        hidden += other.hidden
        count += other.count
    }
}
