// AdamW exactly as torch.optim.AdamW computes it (default, non-amsgrad): decoupled weight decay
// p ← p·(1 − lr·wd), moments m ← β1·m + (1−β1)·g and v ← β2·v + (1−β2)·g², then
// p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps).
// It runs over the trainable set's flat buffers; its state (step, m, v) is two flat buffers in the same
// layout plus a count, open for checkpoints and resume.
import Foundation
import Tensor

/// The AdamW optimizer over a trainable set's flat value and gradient buffers.
public final class AdamW {
    /// lr, e.g. 1e-3; may change between steps (schedules).
    public var learningRate: Float
    /// β1, the first moment's decay, e.g. 0.9.
    public let beta1: Float
    /// β2, the second moment's decay, e.g. 0.999.
    public let beta2: Float
    /// Added to √v̂, e.g. 1e-8.
    public let eps: Float
    /// Decoupled weight decay, e.g. 0.01 (torch's AdamW default).
    public let weightDecay: Float
    /// Steps taken (t in the bias corrections).
    public private(set) var stepCount = 0
    /// m, flat, in the value buffer's layout.
    public let firstMoments: Tensor
    /// v, flat, in the value buffer's layout.
    public let secondMoments: Tensor
    private let values: Tensor
    private let gradients: Tensor
    /// (offset, count, decays) of each parameter in the flat buffers.
    private let segments: [(offset: Int, count: Int, decays: Bool)]

    /// Over `trainable`'s buffers, torch.optim.AdamW's defaults except lr. Weight decay skips norm weights and
    /// biases (HF Trainer's default) unless `decaysNormsAndBiases` (torch's decay-everything).
    public convenience init(trainable: TrainableSet, learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
                            eps: Float = 1e-8, weightDecay: Float = 0.01, decaysNormsAndBiases: Bool = false) {
        self.init(values: trainable.values, gradients: trainable.gradients,
                  segments: trainable.parameters.map { ($0.offset, $0.value.count, $0.decays || decaysNormsAndBiases) },
                  learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
    }

    /// Over flat `values` and `gradients` (same count); `segments` say which ranges exist and decay.
    public init(values: Tensor, gradients: Tensor, segments: [(offset: Int, count: Int, decays: Bool)],
                learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        precondition(values.count == gradients.count, "values \(values.count) vs gradients \(gradients.count)")
        precondition(segments.allSatisfy { $0.offset >= 0 && $0.offset + $0.count <= values.count }, "segment outside the buffer")
        self.values = values
        self.gradients = gradients
        self.segments = segments
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        firstMoments = Tensor(zeros: [values.count])
        secondMoments = Tensor(zeros: [values.count])
    }

    /// One update of every parameter from its current gradient.
    public func step() {
        stepCount += 1
        let t = Double(stepCount)
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = eps
        let stepSize = Float(Double(lr) / (1 - pow(Double(b1), t)))
        let bc2Sqrt = Float((1 - pow(Double(b2), t)).squareRoot())
        let w = values.data, g = gradients.data, m = firstMoments.data, v = secondMoments.data
        for s in segments {
            let decay: Float = s.decays ? 1 - lr * weightDecay : 1
            for j in s.offset..<(s.offset + s.count) {
                w[j] *= decay
                m[j] += (g[j] - m[j]) * (1 - b1)
                v[j] = v[j] * b2 + (1 - b2) * g[j] * g[j]
                let denom = v[j].squareRoot() / bc2Sqrt + eps
                w[j] -= stepSize * m[j] / denom
            }
        }
    }

    /// Puts back a saved state (a checkpoint's step count and moments).
    public func restore(stepCount: Int, firstMoments m: UnsafePointer<Float>, secondMoments v: UnsafePointer<Float>) {
        precondition(stepCount >= 0, "negative step count")
        self.stepCount = stepCount
        firstMoments.data.update(from: m, count: firstMoments.count)
        secondMoments.data.update(from: v, count: secondMoments.count)
    }
}
