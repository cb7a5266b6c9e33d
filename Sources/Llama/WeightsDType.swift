// How a model's matrices are held once loaded (`--weights-dtype`).

/// Whether 16-bit checkpoint matrices stay 16-bit.
public enum WeightsDType: String, CaseIterable, Codable, Sendable {
    /// Projection, embedding and lm_head matrices stay in the checkpoint's type: BF16/F16 ones are read in place
    /// from the mapped file and widened to Float32 block by block inside the GEMMs (half the memory, same results).
    /// Norm weights and biases are Float32 either way; trainable weights become Float32 when they start training.
    case stored
    /// Every tensor is converted to Float32 on load (twice the memory of a 16-bit checkpoint).
    case f32
}
