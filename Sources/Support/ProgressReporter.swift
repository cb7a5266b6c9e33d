// A loop over a known number of items as progress events: items done of the total and the rate units
// processed so far (tokens, passes), stamped with the seconds since the loop began.

/// Sends one loop's `.loop` events to a sink.
public final class ProgressReporter {
    public let label: String
    public let total: Int
    public let unit: String
    private let sink: ProgressSink
    private let clock = Stopwatch()
    private var units = 0.0

    /// `unit` names what the rate counts (e.g. "tok").
    public init(_ label: String, total: Int, unit: String = "tok", sink: @escaping ProgressSink) {
        self.label = label
        self.total = total
        self.unit = unit
        self.sink = sink
    }

    /// Records `done` of `total` items complete and `units` more rate units processed.
    public func update(done: Int, units newUnits: Double = 0) {
        units += newUnits
        sink(.loop(label: label, done: done, total: total, units: units, unit: unit, elapsed: clock.elapsed))
    }
}
