// One training step on random tokens with the adapters' B matrices randomised (so that every LoRA gradient is
// non-zero): what the tests comparing two ways of holding or multiplying the same model run on each.
import Llama
import Support
import Tensor
import Training

/// Random tokens below min(V, 30000) for a (b, t) batch, from `rng`.
func randomTokens(_ model: LlamaModel, batch b: Int, length t: Int, _ rng: inout SeededGenerator) -> [Int32] {
    let V = Int32(min(model.config.vocabSize, 30000))
    return (0..<b * t).map { _ in Int32.random(in: 0..<V, using: &rng) }
}

/// Attaches `configuration` to `model`, draws the adapters' B from U(−0.05, 0.05) with `rng`, and runs one step on
/// `tokens`: the mean loss and a copy of every trainable gradient.
func randomLoRAStep(_ model: LlamaModel, tokens: [Int32], batch b: Int, length t: Int, configuration: TrainingConfiguration,
                    _ rng: inout SeededGenerator) throws -> (loss: Double, gradients: Tensor) {
    let set = try TrainableSet(model: model, configuration: configuration)
    for p in set.parameters where p.name.hasSuffix("lora_B.weight") {
        for i in 0..<p.value.count { p.value[i] = Float.random(in: -0.05...0.05, using: &rng) }
    }
    let pass = LlamaTrainingPass(model: model, batch: b, length: t)
    set.zeroGradients()
    let tally = pass.run(tokens: tokens, targets: NextTokenLoss.shiftedTargets(tokens: tokens, batch: b, length: t))
    return (tally.mean, set.gradients.copy())
}
