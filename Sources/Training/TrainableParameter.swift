// One trainable tensor with its gradient, under the name the checkpoint (HF) or adapter file (PEFT) uses.
// Both are views into the trainable set's flat buffers, at the same offset.
import Tensor

/// A parameter the optimizer updates: a view of the flat value buffer (the model reads it in place) and the
/// view of the flat gradient buffer at the same offset.
public struct TrainableParameter {
    /// HF name (model.layers.3.mlp.up_proj.weight) or PEFT name (base_model.model.…lora_A.weight).
    public let name: String
    /// The parameter itself, shared with the model.
    public let value: Tensor
    /// Its gradient, same shape; accumulated by backward passes, zeroed by `TrainableSet.zeroGradients()`.
    public let gradient: Tensor
    /// Where both start in the flat buffers (elements).
    public let offset: Int
    /// Whether AdamW's weight decay applies by default: not to norm weights and biases (as HF Trainer).
    public let decays: Bool

    public init(name: String, value: Tensor, gradient: Tensor, offset: Int, decays: Bool) {
        precondition(value.shape == gradient.shape, "\(name): value \(value.shape) vs gradient \(gradient.shape)")
        self.name = name
        self.value = value
        self.gradient = gradient
        self.offset = offset
        self.decays = decays
    }

    /// Norm weights and biases are not decayed by HF Trainer's default (`get_decay_parameter_names`).
    public static func decaysByDefault(_ name: String) -> Bool {
        !(name.hasSuffix(".bias") || name.hasSuffix("norm.weight") || name.hasSuffix("layernorm.weight"))
    }
}
