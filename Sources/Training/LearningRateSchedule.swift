// The learning rate of each optimizer step, as transformers' schedulers give it (get_constant_schedule_with_warmup,
// get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup with 0.5 cycles): step s (0-based, the
// s-th optimizer step) during warmup gets lr·s/warmup (so the first step with warmup has lr 0, as in HF),
// then constant, linear decay to 0, or half a cosine down to 0 at the last step.
import Foundation

/// How the learning rate moves over a run.
public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Shape: String, Codable, CaseIterable, Sendable { case constant, linear, cosine }

    /// Peak learning rate, e.g. 2e-4.
    public var peak: Double
    public var shape: Shape
    /// Steps of linear warmup from 0, e.g. 10.
    public var warmupSteps: Int
    /// Optimizer steps in the whole run (where linear and cosine reach 0).
    public var totalSteps: Int

    public init(peak: Double, shape: Shape, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.shape = shape
        self.warmupSteps = max(0, warmupSteps)
        self.totalSteps = max(1, totalSteps)
    }

    /// The learning rate of optimizer step `step` (0-based).
    public func rate(atStep step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step) / Double(max(1, warmupSteps)) }
        let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
        switch shape {
        case .constant: return peak
        case .linear: return peak * max(0, 1 - progress)
        case .cosine: return peak * max(0, 0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}
