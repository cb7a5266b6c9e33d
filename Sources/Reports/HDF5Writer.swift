// Writing one HDF5 file of analysis results (see HDF5Library.swift for what the HDF5 files hold).
import CHDF5
import Foundation
import Support

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
