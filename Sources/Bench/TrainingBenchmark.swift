// Training-step throughput: LoRA r=8 on all seven projections of every layer, forward + backward (+ zeroing
// the gradients) on B sequences of T random tokens, as PyTorchBaseline's "train" mode does with PEFT.
// Peak memory is the process's VmHWM: process-wide and never lowered, so compare modes in separate runs.
import Checkpoint
import Foundation
import Jobs
import Llama
import Support
import Training

/// One training benchmark measurement.
public struct TrainingBenchmarkResult: Codable, Sendable {
    /// Tokens (B·T per step) per second over the timed steps.
    public var tokensPerSecond: Double
    /// Mean wall time of one step.
    public var secondsPerStep: Double
    /// Peak resident set size of the whole process so far (VmHWM), bytes.
    public var peakResidentBytes: Int
    /// Timed steps (after one warm-up step).
    public var steps: Int
    /// Whether blocks were recomputed during backward (gradient checkpointing).
    public var checkpointing: Bool
}

/// Times LoRA training steps on a model.
public enum TrainingBenchmark {
    /// Attaches LoRA (rank `rank`, alpha 2·rank, all seven projections, every layer) to `model`, runs one warm-up
    /// step and `steps` timed steps of forward + backward on `batch` × `length` random tokens, then removes the
    /// adapters again. Returns tokens/s and the process's peak RSS.
    public static func run(model: LlamaModel, steps: Int = 3, batch: Int = 4, length: Int = 256, rank: Int = 8,
                           checkpointing: Bool = false, seed: UInt64 = 1) throws -> TrainingBenchmarkResult {
        precondition(steps > 0, "steps must be positive")
        let set = try TrainableSet(model: model, configuration: .lora(LoRASettings(rank: rank, alpha: Float(2 * rank), seed: seed)))
        defer {
            for layer in model.layers { for p in Projection.allCases { layer.linear(p).lora = nil } }
        }
        var rng = SeededGenerator(seed: seed)
        let tokens = (0..<batch * length).map { _ in Int32.random(in: 0..<Int32(model.config.vocabSize), using: &rng) }
        let targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: batch, length: length)
        let pass = LlamaTrainingPass(model: model, batch: batch, length: length, checkpointing: checkpointing)
        func step() {
            set.zeroGradients()
            _ = pass.run(tokens: tokens, targets: targets)
        }
        step()
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<steps { step() }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return TrainingBenchmarkResult(tokensPerSecond: Double(batch * length * steps) / seconds, secondsPerStep: seconds / Double(steps),
                                       peakResidentBytes: ProcessMemory.peakResidentBytes, steps: steps, checkpointing: checkpointing)
    }
}
