// Absolute paths with symbolic links resolved, also for paths that do not exist yet: what output checks
// compare, so that "out", "./out/" and a link to it are all seen as the same directory.
import Foundation

extension URL {
    /// The absolute path with links resolved; for a path that does not exist yet, its deepest existing
    /// ancestor is resolved and the rest appended.
    public var resolvedPath: String {
        var existing = standardizedFileURL
        var rest: [String] = []
        while !FileManager.default.fileExists(atPath: existing.path) && existing.path != "/" {
            rest.insert(existing.lastPathComponent, at: 0)
            existing.deleteLastPathComponent()
        }
        var path = existing.resolvingSymlinksInPath().path
        for part in rest { path += (path.hasSuffix("/") ? "" : "/") + part }
        return path
    }

    /// Whether this path lies strictly inside `directory` (both resolved; "/a/bc" is not inside "/a/b").
    public func isInside(_ directory: URL) -> Bool {
        let path = resolvedPath, dir = directory.resolvedPath
        return path != dir && path.hasPrefix(dir.hasSuffix("/") ? dir : dir + "/")
    }
}
