// Where a rewritten checkpoint (a cut, a merge) goes, checked before anything is written: never an input
// directory itself, inside it, or around it (replacing OUT would delete the input); an existing non-empty
// OUT only with force. The checkpoint is built in a hidden sibling of OUT and renamed into place at the
// end, so a failure midway leaves no half checkpoint and an old OUT stays until the new one is complete.
import Foundation
import Support

/// The output directory of a checkpoint rewrite.
public struct CheckpointDestination {
    /// OUT as given.
    public let url: URL

    /// Checks `output` against `model`; throws the one-line refusal when it may not be written.
    public init(output: URL, model: URL, force: Bool) throws {
        try self.init(output: output, inputs: [(model, "model")], force: force)
    }

    /// Checks `output` against each input directory (`what` names it in errors: "model", "adapter");
    /// throws the one-line refusal when it may not be written.
    public init(output: URL, inputs: [(url: URL, what: String)], force: Bool) throws {
        url = output
        let out = Self.resolved(output)
        // Compared with a trailing slash each, so that "/a/bc" is not taken for a path inside "/a/b".
        func inside(_ path: String, _ directory: String) -> Bool {
            path != directory && path.hasPrefix(directory.hasSuffix("/") ? directory : directory + "/")
        }
        for (input, what) in inputs {
            let source = Self.resolved(input)
            if out == source { throw PruneError(file: output, "is the \(what) directory itself; choose another output directory") }
            if inside(out, source) { throw PruneError(file: output, "is inside the \(what) directory \(input.path); choose a directory outside it") }
            if inside(source, out) { throw PruneError(file: output, "contains the \(what) directory \(input.path); replacing it would delete the \(what)") }
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw PruneError(file: output, "exists and is not a directory") }
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: output.path)) ?? ["?"]
            if !contents.isEmpty && !force {
                throw PruneError(file: output, "already exists and is not empty (use --force to replace it)")
            }
        }
    }

    /// The absolute path with symbolic links resolved, also for a path that does not exist yet (its
    /// deepest existing ancestor is resolved and the rest appended).
    static func resolved(_ url: URL) -> String { url.resolvedPath }

    /// Builds the checkpoint with `body` in a temporary sibling directory, then puts it at `url`,
    /// replacing what is there (AtomicDirectory). On failure the temporary directory is removed and `url` is untouched.
    public func write(_ body: (URL) throws -> Void) throws {
        try AtomicDirectory.write(url, replacing: true, body)
    }
}
