// A LoRA adapter in PEFT's orientation: A is (R, in), B is (out, R), and the layer computes
// y = x·Wᵀ + scale · (x·Aᵀ)·Bᵀ with scale = alpha / R. B starts at zero so training starts at the base model.
import Tensor

/// Low-rank update of one projection.
public final class LoRAAdapter {
    public let rank: Int            // R
    public let alpha: Float
    public var scale: Float { alpha / Float(rank) }
    public let a: Tensor            // (R, in)
    public let b: Tensor            // (out, R)
    /// Gradients, allocated only when the adapter trains.
    public var dA: Tensor?          // (R, in)
    public var dB: Tensor?          // (out, R)

    public init(a: Tensor, b: Tensor, alpha: Float) {
        precondition(a.shape.count == 2 && b.shape.count == 2 && a.shape[0] == b.shape[1], "LoRA shapes A \(a.shape), B \(b.shape)")
        rank = a.shape[0]
        self.alpha = alpha
        self.a = a
        self.b = b
    }
}
