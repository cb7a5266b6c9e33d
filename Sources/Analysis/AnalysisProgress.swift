// The progress line of an analysis: which batch and phase it is in, how far the whole run is (weighted
// by the plan's FLOPs, so a removal scan step counts for what it costs), the calibration tokens analysed
// per second at that pace, and the time left. Steps arrive every layer, so the line moves every few
// seconds even on large models; it is rewritten in place on a terminal and printed every few seconds
// into a log.
import Foundation
import Support

/// Receives the analysis's steps and prints the progress line.
public final class AnalysisProgress {
    public let plan: AnalysisPlan
    private let write: (String) -> Void
    private let now: () -> Date
    private let interval: TimeInterval
    private let inPlace: Bool
    private let start: Date
    private var lastPrint = Date.distantPast
    private var printedWidth = 0
    /// The last line printed (for tests and the final newline).
    public private(set) var lastLine = ""

    /// - write: where lines go (stderr by default); now: the clock; interval: least seconds between lines;
    ///   inPlace: rewrite one line with "\r" (a terminal) instead of printing one line per update (a log).
    public init(plan: AnalysisPlan, write: ((String) -> Void)? = nil, now: @escaping () -> Date = Date.init,
                interval: TimeInterval? = nil, inPlace: Bool? = nil) {
        self.plan = plan
        let terminal = isatty(2) != 0
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
        self.now = now
        self.inPlace = inPlace ?? terminal
        self.interval = interval ?? (self.inPlace ? 0.5 : 5)
        start = now()
    }

    /// The fraction of the run's FLOPs done after `step` of `phase` in batch `batch` (0-based).
    public func fraction(batch: Int, phase: AnalysisPlan.Phase, step: Int) -> Double {
        let total = plan.totalFLOPs
        return total > 0 ? plan.flopsDone(batch: batch, phase: phase, step: step) / total : 1
    }

    /// Records that `step` steps of `phase` of batch `batch` are done; prints when the interval has passed
    /// or the run is complete.
    public func update(batch: Int, phase: AnalysisPlan.Phase, step: Int) {
        let t = now()
        let f = fraction(batch: batch, phase: phase, step: step)
        let complete = f >= 1 - 1e-12
        guard complete || (f > 0 && t.timeIntervalSince(lastPrint) >= interval) else { return }
        lastPrint = t
        let elapsed = t.timeIntervalSince(start)
        // Tokens analysed per second at the pace of the work done so far (all phases included).
        let rate = elapsed > 0 ? f * Double(plan.tokens) / elapsed : 0
        let eta = f > 0 ? elapsed * (1 - f) / f : 0
        let steps = plan.steps[phase] ?? 0
        let at = steps > 1 ? String(format: " %d/%d", min(step, steps), steps) : ""
        lastLine = String(format: "analyze  batch %d/%d  %@%@  %3.0f%%  %.0f tok/s  elapsed %@  ETA %@",
                          batch + 1, plan.batchFLOPs.count, phase.rawValue, at, 100 * f, rate,
                          ProgressReporter.clock(elapsed), ProgressReporter.clock(eta))
        // In place, a shorter line is padded so that nothing of the longer one before it is left over.
        let padded = lastLine.padding(toLength: max(lastLine.count, printedWidth), withPad: " ", startingAt: 0)
        printedWidth = lastLine.count
        write(inPlace ? "\r" + padded + (complete ? "\n" : "") : lastLine + "\n")
    }
}
