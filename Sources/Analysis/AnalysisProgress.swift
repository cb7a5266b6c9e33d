// An analysis's steps as progress events: which batch and phase it is in, and how far the whole run is,
// weighted by the plan's FLOPs (so that a removal scan step counts for what it costs). Steps arrive every
// layer, so the progress moves every few seconds even on large models.
import Support

/// Turns the analysis's steps into `.analysis` events.
public struct AnalysisProgress {
    public let plan: AnalysisPlan
    private let sink: ProgressSink
    private let clock = Stopwatch()

    public init(plan: AnalysisPlan, sink: @escaping ProgressSink) {
        self.plan = plan
        self.sink = sink
    }

    /// The fraction of the run's FLOPs done after `step` of `phase` in batch `batch` (0-based).
    public func fraction(batch: Int, phase: AnalysisPlan.Phase, step: Int) -> Double {
        let total = plan.totalFLOPs
        return total > 0 ? plan.flopsDone(batch: batch, phase: phase, step: step) / total : 1
    }

    /// Reports that `step` steps of `phase` of batch `batch` are done.
    public func update(batch: Int, phase: AnalysisPlan.Phase, step: Int) {
        sink(.analysis(batch: batch, batches: plan.batchFLOPs.count, phase: phase.rawValue, step: step, steps: plan.steps[phase] ?? 0,
                       fraction: fraction(batch: batch, phase: phase, step: step), tokens: plan.tokens, elapsed: clock.elapsed))
    }
}
