// HDF5 files for analysis results (angular-distance matrices, per-layer statistics) that Python's h5py
// and the HDF5 command-line tools read directly. Only the small subset the project needs: numeric
// datasets of any rank, groups, and scalar string/integer/double attributes.
//
// Every call silences HDF5's automatic error printing and turns a failure into a PruneError naming the
// file, with the innermost message of HDF5's error stack as the detail.
import CHDF5
import Foundation
import Support

// MARK: - Library plumbing

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
private var defaultList: hid_t { prune_h5p_default() }

/// Whether `path` (relative to the root, "/" for the root) names an existing object of `file`.
///
/// H5Lexists only looks at the last component and fails when an earlier one is missing, so every
/// prefix is checked in turn.
private func objectExists(_ file: hid_t, _ path: String) -> Bool {
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
private func objectKind(_ file: hid_t, _ path: String) -> H5I_type_t? {
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
private func moveIntoPlace(_ source: URL, _ destination: URL) throws {
    if rename(source.path, destination.path) != 0 {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: source)
        throw PruneError(file: destination, "cannot move the finished file into place: \(reason)")
    }
}

// MARK: - Writer

/// Writes one HDF5 file of analysis results.
///
/// The file is built under a hidden temporary name beside `url` and renamed into place by `finish()`,
/// so a crash, an error or a writer that is simply dropped leaves no half-written file at `url`.
/// Paths like `"angular_distance/last_token"` create their intermediate groups. Values are stored
/// little-endian (`<f8`, `<f4`, `<i4`, `<i8` in NumPy terms); NaN is stored as is and marks undefined
/// cells. Not safe to share between threads.
public final class HDF5Writer {
    /// Where the finished file will be.
    public let url: URL
    /// The file being written; nil once finished or discarded.
    private var file: hid_t?
    private let temporaryURL: URL

    /// Starts a new file that will replace anything at `url` once `finish()` succeeds.
    public init(creating url: URL) throws {
        HDF5Library.prepare()
        self.url = url
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue
        else { throw PruneError(file: url, "the directory to write into does not exist") }
        temporaryURL = directory.appendingPathComponent(".\(url.lastPathComponent).partial-\(UUID().uuidString)")
        let id = H5Fcreate(temporaryURL.path, prune_h5f_acc_trunc(), defaultList, defaultList)
        guard id >= 0 else { throw HDF5Library.error(url, "cannot create the HDF5 file") }
        file = id
    }

    deinit { discard() }

    /// Closes the file and renames it to `url`. The writer cannot be used afterwards.
    public func finish() throws {
        let id = try openFile()
        file = nil
        if H5Fclose(id) < 0 {
            let error = HDF5Library.error(url, "cannot finish writing the HDF5 file")
            try? FileManager.default.removeItem(at: temporaryURL)
            throw error
        }
        try moveIntoPlace(temporaryURL, url)
    }

    /// Abandons the file: closes it and deletes the temporary copy; `url` is left untouched.
    /// Also what happens when a writer is released without `finish()`. Safe to call more than once.
    public func discard() {
        guard let id = file else { return }
        file = nil
        HDF5Library.prepare()
        H5Fclose(id)
        _ = HDF5Library.takeErrorMessage()
        try? FileManager.default.removeItem(at: temporaryURL)
    }

    // MARK: datasets

    /// Writes `values` as a dataset of 64-bit floats. `shape` is the row-major shape (default: 1-D,
    /// `[]` for a scalar); its product must equal `values.count`.
    public func writeDataset(_ path: String, _ values: [Double], shape: [Int]? = nil) throws {
        try writeDataset(path, values, shape: shape, memoryType: prune_h5t_native_double(), fileType: prune_h5t_ieee_f64le())
    }

    /// Writes `values` as a dataset of 32-bit floats (see the Double overload for `shape`).
    public func writeDataset(_ path: String, _ values: [Float], shape: [Int]? = nil) throws {
        try writeDataset(path, values, shape: shape, memoryType: prune_h5t_native_float(), fileType: prune_h5t_ieee_f32le())
    }

    /// Writes `values` as a dataset of 32-bit signed integers (see the Double overload for `shape`).
    public func writeDataset(_ path: String, _ values: [Int32], shape: [Int]? = nil) throws {
        try writeDataset(path, values, shape: shape, memoryType: prune_h5t_native_int32(), fileType: prune_h5t_std_i32le())
    }

    /// Writes `values` as a dataset of 64-bit signed integers (see the Double overload for `shape`).
    public func writeDataset(_ path: String, _ values: [Int64], shape: [Int]? = nil) throws {
        try writeDataset(path, values, shape: shape, memoryType: prune_h5t_native_int64(), fileType: prune_h5t_std_i64le())
    }

    /// Writes Swift `Int`s as a dataset of 64-bit signed integers (see the Double overload for `shape`).
    public func writeDataset(_ path: String, _ values: [Int], shape: [Int]? = nil) throws {
        try writeDataset(path, values.map { Int64($0) }, shape: shape)
    }

    /// Writes a possibly ragged table as a 2-D dataset of 64-bit floats, `rows.count` × `columns`.
    ///
    /// `nil` entries and the cells past the end of a short row are stored as NaN, the marker of an
    /// undefined cell (the angular-distance matrix d[n][l] is triangular). `columns` defaults to the
    /// longest row and must not be shorter than it.
    public func writeMatrix(_ path: String, _ rows: [[Double?]], columns: Int? = nil) throws {
        let longest = rows.map(\.count).max() ?? 0
        let width = columns ?? longest
        guard width >= longest else {
            throw PruneError(file: url, "matrix \(path): a row has \(longest) values but only \(width) columns were asked for")
        }
        var flat = [Double](repeating: .nan, count: rows.count * width)
        for (r, row) in rows.enumerated() {
            for (c, value) in row.enumerated() { flat[r * width + c] = value ?? .nan }
        }
        try writeDataset(path, flat, shape: [rows.count, width])
    }

    /// Creates the group at `path` and any missing parents; an existing group is left as it is.
    public func createGroup(_ path: String) throws {
        let file = try openFile()
        let name = HDF5Library.normalize(path)
        if let kind = objectKind(file, name) {
            guard kind == H5I_GROUP else { throw PruneError(file: url, "\(name) already exists and is not a group") }
            return
        }
        let links = try intermediateGroupList()
        defer { H5Pclose(links) }
        let group = H5Gcreate2(file, name, links, defaultList, defaultList)
        guard group >= 0 else { throw HDF5Library.error(url, "cannot create group \(name)") }
        H5Gclose(group)
    }

    // MARK: attributes

    /// Sets a string attribute on the object at `path` (the root by default), replacing any old one.
    ///
    /// Stored as UTF-8. Variable-length strings (the default) read back in h5py as `str`; fixed-length
    /// ones (null-terminated, sized to the text) read back there as `numpy.bytes_`.
    public func setAttribute(_ name: String, _ value: String, on path: String = "/", variableLength: Bool = true) throws {
        guard !value.utf8.contains(0) else {
            throw PruneError(file: url, "attribute \(name): HDF5 strings cannot hold a NUL character")
        }
        HDF5Library.prepare()
        let type = H5Tcopy(prune_h5t_c_s1())
        guard type >= 0 else { throw HDF5Library.error(url, "cannot make a string type for attribute \(name)") }
        defer { H5Tclose(type) }
        // C strings need a terminator inside a fixed-length slot; an empty string still needs one byte.
        let size = variableLength ? prune_h5t_variable() : value.utf8.count + 1
        guard H5Tset_size(type, size) >= 0, H5Tset_cset(type, H5T_CSET_UTF8) >= 0,
              H5Tset_strpad(type, H5T_STR_NULLTERM) >= 0
        else { throw HDF5Library.error(url, "cannot make a string type for attribute \(name)") }
        try value.withCString { text in
            if variableLength {
                // A variable-length string is written through a pointer to its char*.
                var pointer: UnsafePointer<CChar>? = text
                try withUnsafePointer(to: &pointer) {
                    try writeAttribute(name, on: path, fileType: type, memoryType: type, value: UnsafeRawPointer($0))
                }
            } else {
                try writeAttribute(name, on: path, fileType: type, memoryType: type, value: UnsafeRawPointer(text))
            }
        }
    }

    /// Sets a 64-bit integer attribute on the object at `path` (the root by default).
    public func setAttribute(_ name: String, _ value: Int, on path: String = "/") throws {
        var stored = Int64(value)
        try writeAttribute(name, on: path, fileType: prune_h5t_std_i64le(), memoryType: prune_h5t_native_int64(), value: &stored)
    }

    /// Sets a 64-bit float attribute on the object at `path` (the root by default).
    public func setAttribute(_ name: String, _ value: Double, on path: String = "/") throws {
        var stored = value
        try writeAttribute(name, on: path, fileType: prune_h5t_ieee_f64le(), memoryType: prune_h5t_native_double(), value: &stored)
    }

    // MARK: internals

    /// Open HDF5 objects of this file, the file itself included (1 when nothing leaks); for the tests.
    var openObjectCount: Int {
        guard let file else { return 0 }
        return H5Fget_obj_count(file, prune_h5f_obj_all())
    }

    private func openFile() throws -> hid_t {
        guard let file else { throw PruneError(file: url, "the HDF5 writer is already finished") }
        HDF5Library.prepare()
        return file
    }

    /// A link-creation property list that makes missing parent groups on the way.
    private func intermediateGroupList() throws -> hid_t {
        let list = H5Pcreate(prune_h5p_link_create())
        guard list >= 0, H5Pset_create_intermediate_group(list, 1) >= 0 else {
            if list >= 0 { H5Pclose(list) }
            throw HDF5Library.error(url, "cannot set up group creation")
        }
        return list
    }

    private func writeDataset<Element>(_ path: String, _ values: [Element], shape: [Int]?,
                                       memoryType: hid_t, fileType: hid_t) throws {
        let file = try openFile()
        let name = HDF5Library.normalize(path)
        guard name != "/" else { throw PruneError(file: url, "a dataset needs a name") }
        let dims = shape ?? [values.count]
        guard dims.allSatisfy({ $0 >= 0 }) else { throw PruneError(file: url, "dataset \(name): negative size in shape \(dims)") }
        let count = dims.reduce(1, *)
        guard count == values.count else {
            throw PruneError(file: url, "dataset \(name): shape \(dims) holds \(count) values but \(values.count) were given")
        }
        guard !objectExists(file, name) else { throw PruneError(file: url, "dataset \(name) already exists") }

        let space = dims.isEmpty
            ? H5Screate(H5S_SCALAR)
            : H5Screate_simple(Int32(dims.count), dims.map { hsize_t($0) }, nil)
        guard space >= 0 else { throw HDF5Library.error(url, "cannot make the dataspace of \(name)") }
        defer { H5Sclose(space) }
        let links = try intermediateGroupList()
        defer { H5Pclose(links) }
        let dataset = H5Dcreate2(file, name, fileType, space, links, defaultList, defaultList)
        guard dataset >= 0 else { throw HDF5Library.error(url, "cannot create dataset \(name)") }
        defer { H5Dclose(dataset) }
        // An empty dataset has nothing to transfer (and HDF5 rejects a nil buffer).
        guard count > 0 else { return }
        let status = values.withUnsafeBytes {
            H5Dwrite(dataset, memoryType, prune_h5s_all(), prune_h5s_all(), defaultList, $0.baseAddress)
        }
        guard status >= 0 else { throw HDF5Library.error(url, "cannot write dataset \(name)") }
    }

    private func writeAttribute(_ name: String, on path: String, fileType: hid_t, memoryType: hid_t,
                                value: UnsafeRawPointer) throws {
        let file = try openFile()
        let target = HDF5Library.normalize(path)
        guard !name.isEmpty else { throw PruneError(file: url, "an attribute needs a name") }
        guard objectExists(file, target) else {
            throw PruneError(file: url, "cannot set attribute \(name): \(target) does not exist")
        }
        let object = H5Oopen(file, target, defaultList)
        guard object >= 0 else { throw HDF5Library.error(url, "cannot open \(target)") }
        defer { H5Oclose(object) }
        // Setting an attribute twice replaces it, which HDF5 only does by deleting the old one first.
        if H5Aexists(object, name) > 0, H5Adelete(object, name) < 0 {
            throw HDF5Library.error(url, "cannot replace attribute \(name) of \(target)")
        }
        let space = H5Screate(H5S_SCALAR)
        guard space >= 0 else { throw HDF5Library.error(url, "cannot make the dataspace of attribute \(name)") }
        defer { H5Sclose(space) }
        let attribute = H5Acreate2(object, name, fileType, space, defaultList, defaultList)
        guard attribute >= 0 else { throw HDF5Library.error(url, "cannot create attribute \(name) on \(target)") }
        defer { H5Aclose(attribute) }
        guard H5Awrite(attribute, memoryType, value) >= 0 else {
            throw HDF5Library.error(url, "cannot write attribute \(name) on \(target)")
        }
    }
}

// MARK: - Reader

/// Reads datasets and attributes of an HDF5 file (ours, h5py's or any other).
///
/// Paths are relative to the root group; a leading "/" is optional. Numbers are converted by HDF5 to
/// the requested type. Not safe to share between threads.
public final class HDF5Reader {
    /// The file being read.
    public let url: URL
    /// The open file; nil once closed.
    private var file: hid_t?

    /// Opens `url` read-only; throws a PruneError naming it when it is missing or not HDF5.
    public init(url: URL) throws {
        HDF5Library.prepare()
        self.url = url
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw PruneError(file: url, "no such file")
        }
        if isDirectory.boolValue { throw PruneError(file: url, "is a directory, not an HDF5 file") }
        let signature = H5Fis_hdf5(url.path)
        if signature == 0 { throw PruneError(file: url, "not an HDF5 file") }
        if signature < 0 { throw HDF5Library.error(url, "cannot read the file") }
        let id = H5Fopen(url.path, prune_h5f_acc_rdonly(), defaultList)
        guard id >= 0 else { throw HDF5Library.error(url, "cannot open the HDF5 file") }
        file = id
    }

    deinit { close() }

    /// Closes the file; later reads throw. Safe to call more than once.
    public func close() {
        guard let id = file else { return }
        file = nil
        HDF5Library.prepare()
        H5Fclose(id)
        _ = HDF5Library.takeErrorMessage()
    }

    /// Whether an object (group or dataset) exists at `path`.
    public func contains(_ path: String) -> Bool {
        guard let file = try? openFile() else { return false }
        return objectExists(file, path)
    }

    /// Paths of all datasets in the file, depth first in name order, e.g. `"angular_distance/last_token"`.
    public func datasetNames() throws -> [String] {
        try listObjects().filter { $0.kind == H5I_DATASET }.map(\.path)
    }

    /// Paths of all groups below the root, depth first in name order.
    public func groupNames() throws -> [String] {
        try listObjects().filter { $0.kind == H5I_GROUP }.map(\.path)
    }

    /// The dataset's shape, row-major; `[]` for a scalar dataset.
    public func datasetShape(_ path: String) throws -> [Int] {
        let dataset = try openDataset(path)
        defer { H5Dclose(dataset) }
        return try shape(of: dataset, path)
    }

    /// All values of a numeric dataset as Doubles, row-major (integers wider than 53 bits may round).
    public func readDoubles(_ path: String) throws -> [Double] {
        try read(path, memoryType: prune_h5t_native_double(), fill: 0.0, integersOnly: false)
    }

    /// All values of a numeric dataset as Floats, row-major (64-bit floats are rounded).
    public func readFloats(_ path: String) throws -> [Float] {
        try read(path, memoryType: prune_h5t_native_float(), fill: Float(0), integersOnly: false)
    }

    /// All values of an integer dataset as Int64s, row-major; a float dataset is an error.
    public func readInt64s(_ path: String) throws -> [Int64] {
        try read(path, memoryType: prune_h5t_native_int64(), fill: Int64(0), integersOnly: true)
    }

    /// A 2-D numeric dataset as rows, with NaN (the undefined-cell marker) read back as nil.
    /// The inverse of `HDF5Writer.writeMatrix`, except that short rows come back padded with nil.
    public func readMatrix(_ path: String) throws -> [[Double?]] {
        let dims = try datasetShape(path)
        guard dims.count == 2 else {
            throw PruneError(file: url, "dataset \(HDF5Library.normalize(path)) has shape \(dims), not 2-D")
        }
        let values = try readDoubles(path)
        return (0..<dims[0]).map { r in
            values[r * dims[1] ..< (r + 1) * dims[1]].map { $0.isNaN ? nil : $0 }
        }
    }

    /// Whether the object at `path` has an attribute called `name`.
    public func hasAttribute(_ name: String, of path: String = "/") throws -> Bool {
        let object = try openObject(path)
        defer { H5Oclose(object) }
        let found = H5Aexists(object, name)
        guard found >= 0 else { throw HDF5Library.error(url, "cannot look up attribute \(name)") }
        return found > 0
    }

    /// A scalar string attribute, fixed- or variable-length.
    public func stringAttribute(_ name: String, of path: String = "/") throws -> String {
        let (attribute, type) = try openScalarAttribute(name, of: path)
        defer { H5Tclose(type); H5Aclose(attribute) }
        guard H5Tget_class(type) == H5T_STRING else { throw PruneError(file: url, "attribute \(name) is not a string") }

        if H5Tis_variable_str(type) > 0 {
            let memory = H5Tcopy(prune_h5t_c_s1())
            guard memory >= 0 else { throw HDF5Library.error(url, "cannot read attribute \(name)") }
            defer { H5Tclose(memory) }
            H5Tset_size(memory, prune_h5t_variable())
            H5Tset_cset(memory, H5Tget_cset(type))
            var text: UnsafeMutablePointer<CChar>?
            guard H5Aread(attribute, memory, &text) >= 0 else { throw HDF5Library.error(url, "cannot read attribute \(name)") }
            // HDF5 allocated the string; it must free it too.
            defer { if let text { H5free_memory(text) } }
            return text.map { String(cString: $0) } ?? ""
        }

        // Fixed length: read the raw slot (one spare byte so it is always terminated), then drop the padding.
        let size = H5Tget_size(type)
        var bytes = [UInt8](repeating: 0, count: size + 1)
        guard H5Aread(attribute, type, &bytes) >= 0 else { throw HDF5Library.error(url, "cannot read attribute \(name)") }
        var end = bytes.firstIndex(of: 0) ?? size
        if H5Tget_strpad(type) == H5T_STR_SPACEPAD {
            while end > 0, bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
        }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// A scalar integer attribute.
    public func intAttribute(_ name: String, of path: String = "/") throws -> Int {
        let (attribute, type) = try openScalarAttribute(name, of: path)
        defer { H5Tclose(type); H5Aclose(attribute) }
        guard H5Tget_class(type) == H5T_INTEGER else { throw PruneError(file: url, "attribute \(name) is not an integer") }
        var value: Int64 = 0
        guard H5Aread(attribute, prune_h5t_native_int64(), &value) >= 0 else {
            throw HDF5Library.error(url, "cannot read attribute \(name)")
        }
        return Int(value)
    }

    /// A scalar numeric attribute (float or integer) as a Double.
    public func doubleAttribute(_ name: String, of path: String = "/") throws -> Double {
        let (attribute, type) = try openScalarAttribute(name, of: path)
        defer { H5Tclose(type); H5Aclose(attribute) }
        let kind = H5Tget_class(type)
        guard kind == H5T_FLOAT || kind == H5T_INTEGER else { throw PruneError(file: url, "attribute \(name) is not a number") }
        var value = 0.0
        guard H5Aread(attribute, prune_h5t_native_double(), &value) >= 0 else {
            throw HDF5Library.error(url, "cannot read attribute \(name)")
        }
        return value
    }

    // MARK: internals

    /// Open HDF5 objects of this file, the file itself included (1 when nothing leaks); for the tests.
    var openObjectCount: Int {
        guard let file else { return 0 }
        return H5Fget_obj_count(file, prune_h5f_obj_all())
    }

    private func openFile() throws -> hid_t {
        guard let file else { throw PruneError(file: url, "the HDF5 file is already closed") }
        HDF5Library.prepare()
        return file
    }

    private func openObject(_ path: String) throws -> hid_t {
        let file = try openFile()
        let name = HDF5Library.normalize(path)
        guard objectExists(file, name) else { throw PruneError(file: url, "no object \(name)") }
        let object = H5Oopen(file, name, defaultList)
        guard object >= 0 else { throw HDF5Library.error(url, "cannot open \(name)") }
        return object
    }

    private func openDataset(_ path: String) throws -> hid_t {
        let file = try openFile()
        let name = HDF5Library.normalize(path)
        guard objectExists(file, name) else { throw PruneError(file: url, "no dataset \(name)") }
        let dataset = H5Dopen2(file, name, defaultList)
        guard dataset >= 0 else { throw HDF5Library.error(url, "cannot open dataset \(name)") }
        return dataset
    }

    /// The attribute and a copy of its type (both for the caller to close), checked to hold one value.
    private func openScalarAttribute(_ name: String, of path: String) throws -> (attribute: hid_t, type: hid_t) {
        let object = try openObject(path)
        defer { H5Oclose(object) }
        let target = HDF5Library.normalize(path)
        guard H5Aexists(object, name) > 0 else {
            _ = HDF5Library.takeErrorMessage()
            throw PruneError(file: url, "no attribute \(name) on \(target)")
        }
        let attribute = H5Aopen(object, name, defaultList)
        guard attribute >= 0 else { throw HDF5Library.error(url, "cannot open attribute \(name) on \(target)") }
        let space = H5Aget_space(attribute)
        let points = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1
        if space >= 0 { H5Sclose(space) }
        guard points == 1 else {
            H5Aclose(attribute)
            throw PruneError(file: url, "attribute \(name) on \(target) holds \(max(points, 0)) values, not one")
        }
        let type = H5Aget_type(attribute)
        guard type >= 0 else {
            let error = HDF5Library.error(url, "cannot read the type of attribute \(name)")
            H5Aclose(attribute)
            throw error
        }
        return (attribute, type)
    }

    private func shape(of dataset: hid_t, _ path: String) throws -> [Int] {
        let space = H5Dget_space(dataset)
        guard space >= 0 else { throw HDF5Library.error(url, "cannot read the shape of \(path)") }
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw HDF5Library.error(url, "cannot read the shape of \(path)") }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        guard rank == 0 || H5Sget_simple_extent_dims(space, &dims, nil) >= 0 else {
            throw HDF5Library.error(url, "cannot read the shape of \(path)")
        }
        return dims.map { Int($0) }
    }

    private func read<Element>(_ path: String, memoryType: hid_t, fill: Element, integersOnly: Bool) throws -> [Element] {
        let name = HDF5Library.normalize(path)
        let dataset = try openDataset(name)
        defer { H5Dclose(dataset) }
        let type = H5Dget_type(dataset)
        guard type >= 0 else { throw HDF5Library.error(url, "cannot read the type of \(name)") }
        let kind = H5Tget_class(type)
        H5Tclose(type)
        guard kind == H5T_INTEGER || (kind == H5T_FLOAT && !integersOnly) else {
            throw PruneError(file: url, "dataset \(name) does not hold \(integersOnly ? "integers" : "numbers")")
        }
        let count = try shape(of: dataset, name).reduce(1, *)
        var values = [Element](repeating: fill, count: count)
        guard count > 0 else { return values }
        let status = values.withUnsafeMutableBytes {
            H5Dread(dataset, memoryType, prune_h5s_all(), prune_h5s_all(), defaultList, $0.baseAddress)
        }
        guard status >= 0 else { throw HDF5Library.error(url, "cannot read dataset \(name)") }
        return values
    }

    /// Every object below the root with its kind, found by walking the groups by link index.
    /// (H5Lvisit/H5Ovisit change signature between HDF5 1.10 and 1.12; these calls do not.)
    private func listObjects() throws -> [(path: String, kind: H5I_type_t)] {
        let file = try openFile()
        var found: [(path: String, kind: H5I_type_t)] = []
        try walk(group: file, prefix: "", depth: 0, into: &found)
        return found
    }

    private func walk(group: hid_t, prefix: String, depth: Int, into found: inout [(path: String, kind: H5I_type_t)]) throws {
        // Hard links can form cycles; real result files are a few levels deep.
        guard depth < 32 else { throw PruneError(file: url, "groups nest deeper than 32 levels below \(prefix)") }
        var info = H5G_info_t()
        guard H5Gget_info(group, &info) >= 0 else { throw HDF5Library.error(url, "cannot list group /\(prefix)") }
        for index in 0..<info.nlinks {
            let length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, defaultList)
            guard length >= 0 else { throw HDF5Library.error(url, "cannot list group /\(prefix)") }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            guard H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, defaultList) >= 0
            else { throw HDF5Library.error(url, "cannot list group /\(prefix)") }
            let name = String(cString: buffer)
            let path = prefix.isEmpty ? name : "\(prefix)/\(name)"
            let child = H5Oopen(group, name, defaultList)
            guard child >= 0 else {
                _ = HDF5Library.takeErrorMessage()   // a dangling soft or external link: nothing to list
                continue
            }
            defer { H5Oclose(child) }
            let kind = H5Iget_type(child)
            found.append((path, kind))
            if kind == H5I_GROUP { try walk(group: child, prefix: path, depth: depth + 1, into: &found) }
        }
    }
}
