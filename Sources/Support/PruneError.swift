// One error type for every user-facing failure: a file (or option) and what is wrong with it, printed
// by the CLI as a single line.
import Foundation

/// A failure a user can act on: which file or input, and what is wrong.
public struct PruneError: Error, CustomStringConvertible, Equatable {
    /// The file, directory or option at fault (may be empty).
    public let subject: String
    /// What is wrong, in a few words.
    public let problem: String

    public init(_ subject: String, _ problem: String) {
        self.subject = subject
        self.problem = problem
    }

    public init(file: URL, _ problem: String) {
        self.init(file.path, problem)
    }

    public var description: String { subject.isEmpty ? problem : "\(subject): \(problem)" }
}
