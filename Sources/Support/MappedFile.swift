// A read-only memory map of a whole file: weights are read straight from the page cache.
import Foundation
import Glibc
#if canImport(Glibc)
#endif

/// A file mapped read-only into memory for the lifetime of the object.
public final class MappedFile {
    public let url: URL
    /// Start of the mapping (nil for an empty file).
    public let bytes: UnsafeRawPointer?
    /// File size in bytes.
    public let size: Int

    public init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw PruneError(file: url, FileManager.default.fileExists(atPath: url.path) ? "cannot open (\(String(cString: strerror(errno))))" : "file not found")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw PruneError(file: url, "cannot stat") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw PruneError(file: url, "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            bytes = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw PruneError(file: url, "cannot memory-map (\(String(cString: strerror(errno))))") }
        bytes = UnsafeRawPointer(p)
    }

    /// Lets the kernel take back the pages read so far (they leave the resident set); the mapping stays valid,
    /// and a later read faults them in again from the page cache or the file. Safe because the mapping is
    /// read-only: no page holds anything the file does not.
    public func dropResidentPages() {
        if let bytes { madvise(UnsafeMutableRawPointer(mutating: bytes), size, MADV_DONTNEED) }
    }

    deinit {
        if let bytes { munmap(UnsafeMutableRawPointer(mutating: bytes), size) }
    }
}
