// HDF5 files for analysis results (angular-distance matrices, per-layer statistics) that Python's h5py
// and the HDF5 command-line tools read directly. Only the small subset the project needs: numeric
// datasets of any rank, groups, and scalar string/integer/double attributes.
//
// Every call silences HDF5's automatic error printing and turns a failure into a PruneError naming the
// file, with the innermost message of HDF5's error stack as the detail.
//
// This file: the process-wide setup and error translation; HDF5Writer.swift and HDF5Reader.swift use it.
import CHDF5
import Foundation
import Support

/// Process-wide HDF5 setup and error translation shared by the writer and the reader.
enum HDF5Library {
    /// H5open() once: the `*_g` type globals behind H5T_NATIVE_* are -1 until it has run.
    private static let opened: Bool = H5open() >= 0

    /// Makes the library ready for a call on the current thread.
    ///
    /// Debian's HDF5 is built thread-safe, and there every thread has its own default error stack with
    /// its own auto-print setting, so the silencing is repeated on each entry rather than done once.
    static func prepare() {
        _ = opened
        H5Eset_auto2(prune_h5e_default(), nil, nil)
    }

    /// The most specific message on this thread's HDF5 error stack, which is cleared in the process.
    static func takeErrorMessage() -> String? {
        let stack = H5Eget_current_stack()   // copies and clears the current stack
        guard stack >= 0 else { return nil }
        defer { H5Eclose_stack(stack) }
        var message: String?
        withUnsafeMutablePointer(to: &message) { out in
            // Upward walking starts at the innermost frame, the one that says what actually went wrong.
            _ = H5Ewalk2(stack, H5E_WALK_UPWARD, { _, error, context in
                guard let error, let context, let desc = error.pointee.desc, desc.pointee != 0 else { return 0 }
                let out = context.assumingMemoryBound(to: String?.self)
                if out.pointee == nil { out.pointee = String(cString: desc) }
                return 0
            }, out)
        }
        return message
    }

    /// A PruneError for `file` saying `what` failed, with HDF5's own reason appended when it has one.
    static func error(_ file: URL, _ what: String) -> PruneError {
        if let detail = takeErrorMessage() {
            // Some HDF5 messages span lines; a PruneError prints as one.
            let line = detail.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.joined(separator: " ")
            return PruneError(file: file, "\(what) (HDF5: \(line))")
        }
        return PruneError(file: file, what)
    }

    /// "/a/b/" and "a/b" name the same object; HDF5 resolves relative names from the file's root group.
    static func normalize(_ path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        return parts.isEmpty ? "/" : parts.joined(separator: "/")
    }
}

/// H5P_DEFAULT, already widened to hid_t (the macro itself imports as Int32).
var defaultList: hid_t { prune_h5p_default() }

/// Whether `path` (relative to the root, "/" for the root) names an existing object of `file`.
///
/// H5Lexists only looks at the last component and fails when an earlier one is missing, so every
/// prefix is checked in turn.
func objectExists(_ file: hid_t, _ path: String) -> Bool {
    let normalized = HDF5Library.normalize(path)
    if normalized == "/" { return true }
    var prefix = ""
    for part in normalized.split(separator: "/") {
        prefix += prefix.isEmpty ? String(part) : "/\(part)"
        if H5Lexists(file, prefix, defaultList) <= 0 {
            _ = HDF5Library.takeErrorMessage()   // a dataset on the way is an error, not just "absent"
            return false
        }
    }
    return true
}

/// The HDF5 identifier type of the object at `path`, or nil when it does not exist or cannot be opened.
func objectKind(_ file: hid_t, _ path: String) -> H5I_type_t? {
    guard objectExists(file, path) else { return nil }
    let object = H5Oopen(file, HDF5Library.normalize(path), defaultList)
    guard object >= 0 else {
        _ = HDF5Library.takeErrorMessage()
        return nil
    }
    defer { H5Oclose(object) }
    return H5Iget_type(object)
}

/// Moves the finished temporary file over `destination` in one step (rename(2) replaces atomically).
func moveIntoPlace(_ source: URL, _ destination: URL) throws {
    if rename(source.path, destination.path) != 0 {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: source)
        throw PruneError(file: destination, "cannot move the finished file into place: \(reason)")
    }
}
