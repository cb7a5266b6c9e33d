// One trainable tensor with its gradient, under the name the checkpoint (HF) or adapter file (PEFT) uses.
import Tensor

/// A parameter the optimizer updates: the model's own tensor (updated in place) and its gradient buffer.
public struct TrainableParameter {
    /// HF name (model.layers.3.mlp.up_proj.weight) or PEFT name (base_model.model.…lora_A.weight).
    public let name: String
    /// The parameter itself, shared with the model.
    public let value: Tensor
    /// Its gradient, same shape; accumulated by backward passes, zeroed by `TrainableSet.zeroGradients()`.
    public let gradient: Tensor

    /// Pairs a tensor with its gradient (same shape).
    public init(name: String, value: Tensor, gradient: Tensor) {
        precondition(value.shape == gradient.shape, "\(name): value \(value.shape) vs gradient \(gradient.shape)")
        self.name = name
        self.value = value
        self.gradient = gradient
    }
}
