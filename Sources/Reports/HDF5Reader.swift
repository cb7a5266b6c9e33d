// Reading an HDF5 file back (ours, h5py's or any other): the analysis files' round trip and tests.
import CHDF5
import Foundation
import Support

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
