// What the library's long loops report as they go. The library only emits these, on every step, with the
// figures it measured; the command line decides what to print and how often (CLISupport's ProgressPrinter),
// a test collects them, another caller drops them (no sink).

/// One report from a long loop. `elapsed` is seconds since the loop began, by its Stopwatch.
public enum ProgressEvent: Sendable {
    /// `done` of `total` items of the loop `label` (windows evaluated, block removals measured), after `units`
    /// rate units in all (tokens, passes: named by `unit`).
    case loop(label: String, done: Int, total: Int, units: Double, unit: String, elapsed: Double)
    /// An analysis after `step` of the `steps` of `phase` ("full pass", "removal scan"…) of batch `batch`
    /// (0-based) of `batches`; `fraction` of the whole run's FLOPs is done, and the run analyses `tokens`
    /// calibration tokens in all.
    case analysis(batch: Int, batches: Int, phase: String, step: Int, steps: Int, fraction: Double, tokens: Int, elapsed: Double)
    /// Optimizer step `step` of `steps` is done, with its loss, learning rate and gradient norm; the pace of this
    /// process's training so far (held-out evaluations left out) in tokens per second and seconds per step.
    case trainingStep(step: Int, steps: Int, loss: Double, learningRate: Double, gradientNorm: Double,
                      tokensPerSecond: Double, secondsPerStep: Double, elapsed: Double)
}

/// Where a loop sends its events (called on the loop's thread, one event at a time).
public typealias ProgressSink = (ProgressEvent) -> Void
