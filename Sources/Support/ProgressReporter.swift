// Progress lines for long loops: done/total, rate and ETA, on stderr, at most a few times a second.
import Foundation

/// Prints "label  12/40  30%  1234 tok/s  ETA 0:42" to stderr.
public final class ProgressReporter {
    public let label: String
    public let total: Int
    public let unit: String
    private let start = Date()
    private var lastPrint = Date.distantPast
    private var units = 0.0
    private let enabled: Bool

    /// `unit` names what the rate counts (e.g. "tok"); `enabled` false silences it (tests, --quiet).
    public init(_ label: String, total: Int, unit: String = "tok", enabled: Bool = true) {
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled
    }

    /// Records `done` of `total` steps complete and `units` more rate units processed.
    public func update(done: Int, units newUnits: Double = 0) {
        units += newUnits
        guard enabled else { return }
        let now = Date()
        guard done >= total || now.timeIntervalSince(lastPrint) > 0.5 else { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? units / elapsed : 0
        let eta = done > 0 ? elapsed * Double(total - done) / Double(done) : 0
        let pct = total > 0 ? 100 * done / total : 100
        let line = String(format: "\r%@  %d/%d  %3d%%  %.0f %@/s  elapsed %@  ETA %@", label, done, total, pct, rate, unit,
                          Self.clock(elapsed), Self.clock(eta))
        FileHandle.standardError.write(Data((line + (done >= total ? "\n" : "")).utf8))
    }

    /// Seconds as m:ss or h:mm:ss, "--:--" when unknown: every progress line's elapsed and ETA.
    public static func clock(_ s: Double) -> String {
        guard s.isFinite else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
