// The progress lines of both executables, on stderr, from the events the library's loops emit:
//   eval  12/40   30%  1234 tok/s  elapsed 0:12  ETA 0:28
//   analyze  batch 2/7  removal scan 3/5   40%  880 tok/s  elapsed 1:00:00  ETA 1:30:00
//   step 20/100  loss 2.3456  lr 0.0002  grad norm 0.812  3100 tok/s  elapsed 0:40  ETA 2:40
// A loop's line is rewritten in place with "\r" at most twice a second, and its last line always printed with
// its newline. An analysis does the same on a terminal; into a log it prints one line every 5 seconds. A
// training step is one line each.
import Foundation
import Support

/// Prints progress events as lines.
public final class ProgressPrinter {
    private let write: (String) -> Void
    private let inPlace: Bool
    /// The loop whose line is on screen: when (its elapsed) that line was printed and how wide it was.
    private var shown: (loop: String, at: Double, width: Int)?

    /// - write: where lines go (stderr by default).
    /// - inPlace: whether an analysis rewrites one line (default: when stderr is a terminal) or prints one line per
    ///   update into a log.
    public init(write: ((String) -> Void)? = nil, inPlace: Bool? = nil) {
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
        self.inPlace = inPlace ?? (isatty(2) != 0)
    }

    /// This printer as the sink a library loop takes.
    public var sink: ProgressSink { { self.print($0) } }

    /// Prints `event`'s line when it is due.
    public func print(_ event: ProgressEvent) {
        switch event {
        case let .loop(label, done, total, units, unit, elapsed):
            let complete = done >= total
            guard due(label, elapsed: elapsed, interval: 0.5, complete: complete) else { return }
            let rate = elapsed > 0 ? units / elapsed : 0
            let eta = done > 0 ? elapsed * Double(total - done) / Double(done) : 0
            let percent = total > 0 ? 100 * done / total : 100
            show(label, String(format: "%@  %d/%d  %3d%%  %.0f %@/s  elapsed %@  ETA %@", label, done, total, percent, rate, unit,
                               Self.clock(elapsed), Self.clock(eta)), elapsed: elapsed, inPlace: true, complete: complete)
        case let .analysis(batch, batches, phase, step, steps, fraction, tokens, elapsed):
            let complete = fraction >= 1 - 1e-12
            guard fraction > 0, due("analyze", elapsed: elapsed, interval: inPlace ? 0.5 : 5, complete: complete) else { return }
            // Tokens analysed per second at the pace of the work done so far (all phases included).
            let rate = elapsed > 0 ? fraction * Double(tokens) / elapsed : 0
            let eta = elapsed * (1 - fraction) / fraction
            let at = steps > 1 ? String(format: " %d/%d", min(step, steps), steps) : ""
            show("analyze", String(format: "analyze  batch %d/%d  %@%@  %3.0f%%  %.0f tok/s  elapsed %@  ETA %@", batch + 1, batches, phase, at,
                                   100 * fraction, rate, Self.clock(elapsed), Self.clock(eta)), elapsed: elapsed, inPlace: inPlace, complete: complete)
        case let .trainingStep(step, steps, loss, learningRate, gradientNorm, tokensPerSecond, secondsPerStep, elapsed):
            let eta = secondsPerStep * Double(steps - step)
            write(String(format: "step %d/%d  loss %.4f  lr %.3g  grad norm %.3f  %.0f tok/s  elapsed %@  ETA %@\n", step, steps, loss,
                         learningRate, gradientNorm, tokensPerSecond, Self.clock(elapsed), Self.clock(eta)))
        }
    }

    /// Whether a line of `loop` is due at `elapsed`: its first, its last, or one `interval` seconds after the last shown.
    private func due(_ loop: String, elapsed: Double, interval: Double, complete: Bool) -> Bool {
        guard let shown, shown.loop == loop, !complete else { return true }
        return elapsed - shown.at >= interval
    }

    /// Prints `line` of `loop`: in place over the one before (padded to cover a longer one), or as a line of its own.
    private func show(_ loop: String, _ line: String, elapsed: Double, inPlace: Bool, complete: Bool) {
        if inPlace {
            let width = shown.map { $0.loop == loop ? $0.width : 0 } ?? 0
            write("\r" + line.padding(toLength: max(line.count, width), withPad: " ", startingAt: 0) + (complete ? "\n" : ""))
        } else {
            write(line + "\n")
        }
        shown = complete ? nil : (loop, elapsed, line.count)
    }

    /// Seconds as m:ss or h:mm:ss, "--:--" when unknown (or beyond any wait worth showing).
    public static func clock(_ s: Double) -> String {
        guard s.isFinite, s.magnitude < 1e12 else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
