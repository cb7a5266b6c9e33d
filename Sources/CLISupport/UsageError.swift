// A library type's refusal of an option, reported as ArgumentParser reports a bad flag: a usage error (exit
// status 64, "(see `prune help`)"), raised before anything runs.
import ArgumentParser
import Support

/// Runs `check` (a library type's validation, from a command's `validate()`); a PruneError it throws becomes a
/// usage error with the same text.
public func asUsageError<T>(_ check: () throws -> T) throws -> T {
    do { return try check() } catch let error as PruneError { throw ValidationError(error.description) }
}
