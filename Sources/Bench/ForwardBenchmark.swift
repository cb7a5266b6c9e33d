// Forward-pass throughput: B sequences × T random tokens per call, tokens/s over timed repetitions after
// one warm-up call.
import Foundation
import Llama
import Support

/// One measurement.
public struct BenchmarkResult: Codable, Sendable {
    public var name: String
    public var engine: String          // "prune" or "pytorch"
    public var tokensPerSecond: Double
    public var peakMemoryBytes: Int
    public var threads: Int
    public var mode: String            // "forward", "train" or "train-checkpointed"
    /// Seconds to load the checkpoint (config, mapping or converting the weights), when measured.
    public var loadSeconds: Double?
    /// How the weights were held ("stored" or "f32"), when said.
    public var weightsDType: String?
    /// How the projections multiplied: "f32" or "bf16" (ours), "f32" or "autocast-bf16" (PyTorch), when said.
    public var compute: String?
    /// MemoryEstimate's peak for this run, made before loading, to compare with `peakMemoryBytes`.
    public var estimatedPeakBytes: Int?
    public init(name: String, engine: String, tokensPerSecond: Double, peakMemoryBytes: Int, threads: Int, mode: String) {
        self.name = name; self.engine = engine; self.tokensPerSecond = tokensPerSecond
        self.peakMemoryBytes = peakMemoryBytes; self.threads = threads; self.mode = mode
    }
}

public enum ForwardBenchmark {
    /// Runs `repetitions` timed forward passes of (batch, length) on `model` and returns tokens/s.
    public static func tokensPerSecond(model: LlamaModel, batch: Int = 4, length: Int = 256, repetitions: Int = 3) -> Double {
        var rng = SeededGenerator(seed: 1)
        let tokens = (0..<batch * length).map { _ in Int32.random(in: 0..<Int32(model.config.vocabSize), using: &rng) }
        _ = model.forward(tokens: tokens, batch: batch, length: length)
        let start = DispatchTime.now()
        for _ in 0..<repetitions { _ = model.forward(tokens: tokens, batch: batch, length: length) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return Double(batch * length * repetitions) / seconds
    }
}
