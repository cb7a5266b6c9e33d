// AdamW exactly as torch.optim.AdamW computes it (default, non-amsgrad): decoupled weight decay
// p ← p·(1 − lr·wd), moments m ← β1·m + (1−β1)·g and v ← β2·v + (1−β2)·g², then
// p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps).
import Foundation
import Tensor

/// The AdamW optimizer over a list of parameters.
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
    /// What it updates, in place.
    public let parameters: [TrainableParameter]
    /// Steps taken (t in the bias corrections).
    public private(set) var stepCount = 0
    private let firstMoments: [Tensor]    // m, one per parameter, same shape
    private let secondMoments: [Tensor]   // v, one per parameter, same shape

    /// torch.optim.AdamW's defaults except lr.
    public init(parameters: [TrainableParameter], learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
                eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        firstMoments = parameters.map { Tensor(zeros: $0.value.shape) }
        secondMoments = parameters.map { Tensor(zeros: $0.value.shape) }
    }

    /// One update of every parameter from its current gradient.
    public func step() {
        stepCount += 1
        let t = Double(stepCount)
        let lr = learningRate, b1 = beta1, b2 = beta2
        let decay = 1 - lr * weightDecay
        let stepSize = Float(Double(lr) / (1 - pow(Double(b1), t)))
        let bc2Sqrt = Float((1 - pow(Double(b2), t)).squareRoot())
        for (i, p) in parameters.enumerated() {
            let w = p.value.data, g = p.gradient.data, m = firstMoments[i].data, v = secondMoments[i].data
            for j in 0..<p.value.count {
                w[j] *= decay
                m[j] += (g[j] - m[j]) * (1 - b1)
                v[j] = v[j] * b2 + (1 - b2) * g[j] * g[j]
                let denom = v[j].squareRoot() / bc2Sqrt + eps
                w[j] -= stepSize * m[j] / denom
            }
        }
    }
}
