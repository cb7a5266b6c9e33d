// The one clock of progress: every event's elapsed time is read from a Stopwatch started where its loop
// begins. Monotonic, so that a change of the wall clock moves no rate and no ETA.
import Foundation

/// Seconds since it was made.
public struct Stopwatch: Sendable {
    private let start = DispatchTime.now().uptimeNanoseconds

    public init() {}

    /// Seconds since `init`.
    public var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
