// Where a job's side remarks go while it runs: warnings ("--context clipped to 512") and notes (what was
// loaded, what the run will cost). The result itself is returned, never written here, so the command line
// can keep stdout for the result (and --json) and a test or a recipe runner can collect or drop the rest.
import Foundation

/// The two kinds of remark a job makes.
public struct JobLog {
    /// One warning, without the "warning: " prefix.
    public var warning: (String) -> Void
    /// One or more lines of information, each ending in a newline.
    public var note: (String) -> Void

    public init(warning: @escaping (String) -> Void, note: @escaping (String) -> Void) {
        self.warning = warning
        self.note = note
    }

    /// "warning: …" lines and notes on stderr, as the command line shows them.
    public static var standardError: JobLog {
        let write = { (text: String) in FileHandle.standardError.write(Data(text.utf8)) }
        return JobLog(warning: { write("warning: \($0)\n") }, note: write)
    }

    /// Says nothing.
    public static var silent: JobLog { JobLog(warning: { _ in }, note: { _ in }) }
}
