// Shared by every fuzz target (compiled into each): where the repository's files are, and a scratch
// file in memory-backed /dev/shm for parsers that read from a path.
import Foundation

/// Helpers for fuzz targets.
enum FuzzInput {
    /// The repository root (this file lives in Tests/Fuzz).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A per-process scratch directory.
    static let scratch: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let url = URL(fileURLWithPath: base).appendingPathComponent("prune-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// Writes `bytes` to `name` in the scratch directory and returns its URL.
    static func file(_ name: String, _ bytes: UnsafeRawBufferPointer) -> URL {
        let url = scratch.appendingPathComponent(name)
        FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
        return url
    }

    /// The input as a buffer.
    static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: data, count: size)
    }
}
