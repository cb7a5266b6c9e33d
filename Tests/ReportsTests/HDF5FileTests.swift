// HDF5Writer/HDF5Reader: bit-exact round trips, groups, attributes, h5dump compatibility, errors that
// name the file, and the no-half-file guarantee.
import Foundation
import Reports
import Support
import TestSupport
import XCTest
@testable import Reports

final class HDF5FileTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = try Fixtures.temporaryDirectory("hdf5-test")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
        super.tearDown()
    }

    /// Writes a file through `body` and finishes it, checking that nothing was left open on the way.
    private func makeFile(_ name: String = "results.h5", _ body: (HDF5Writer) throws -> Void) throws -> URL {
        let url = directory.appendingPathComponent(name)
        let writer = try HDF5Writer(creating: url)
        try body(writer)
        XCTAssertEqual(writer.openObjectCount, 1, "only the file itself should be open")
        try writer.finish()
        return url
    }

    func testNumericDatasetsRoundTripBitExact() throws {
        // NaN payloads, signed zero, infinities and subnormals must all survive unchanged.
        let doubles: [Double] = [0, -0.0, 1, -1.5, .pi, .nan, Double(nan: 0x1234, signaling: false), .infinity,
                                 -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e-300]
        let floats: [Float] = [0, -0.0, 3.25, .nan, Float(nan: 7, signaling: false), -.infinity,
                               .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        let int32s: [Int32] = [.min, -1, 0, 1, .max, 42]
        let int64s: [Int64] = [.min, -1, 0, 1, .max, 1 << 53 + 1]
        let url = try makeFile { writer in
            try writer.writeDataset("doubles", doubles, shape: [3, 4])
            try writer.writeDataset("doubles_1d", doubles)
            try writer.writeDataset("floats", floats, shape: [2, 2, 2])
            try writer.writeDataset("int32s", int32s, shape: [2, 3])
            try writer.writeDataset("int64s", int64s)
            try writer.writeDataset("ints", [7, -8, 9])
            try writer.writeDataset("scalar", [2.5], shape: [])
            try writer.writeDataset("empty", [Double](), shape: [0, 5])
        }

        let reader = try HDF5Reader(url: url)
        XCTAssertEqual(try reader.datasetShape("doubles"), [3, 4])
        XCTAssertEqual(try reader.datasetShape("/doubles_1d"), [12])
        XCTAssertEqual(try reader.datasetShape("floats"), [2, 2, 2])
        XCTAssertEqual(try reader.datasetShape("int32s"), [2, 3])
        XCTAssertEqual(try reader.datasetShape("scalar"), [])
        XCTAssertEqual(try reader.datasetShape("empty"), [0, 5])

        XCTAssertEqual(try reader.readDoubles("doubles").map(\.bitPattern), doubles.map(\.bitPattern))
        XCTAssertEqual(try reader.readDoubles("doubles_1d").map(\.bitPattern), doubles.map(\.bitPattern))
        XCTAssertEqual(try reader.readFloats("floats").map(\.bitPattern), floats.map(\.bitPattern))
        XCTAssertEqual(try reader.readInt64s("int32s"), int32s.map(Int64.init))
        XCTAssertEqual(try reader.readInt64s("int64s"), int64s)
        XCTAssertEqual(try reader.readInt64s("ints"), [7, -8, 9])
        XCTAssertEqual(try reader.readDoubles("scalar"), [2.5])
        XCTAssertEqual(try reader.readDoubles("empty"), [])
        // HDF5 converts on read: floats widen exactly, integers become doubles.
        XCTAssertEqual(try reader.readDoubles("floats")[2], 3.25)
        XCTAssertEqual(try reader.readDoubles("int32s"), int32s.map(Double.init))
        XCTAssertEqual(reader.openObjectCount, 1)
    }

    func testMatrixKeepsUndefinedCellsAsNaN() throws {
        // The triangular shape of d[n][l]: row n has L − n + 1 entries.
        let rows: [[Double?]] = [[0.1, 0.2, 0.3, nil], [0.4, nil], [0.5]]
        let url = try makeFile { try $0.writeMatrix("angular_distance/last_token", rows) }
        let reader = try HDF5Reader(url: url)
        XCTAssertEqual(try reader.datasetShape("angular_distance/last_token"), [3, 4])
        let values = try reader.readDoubles("angular_distance/last_token")
        XCTAssertEqual(values.filter { !$0.isNaN }, [0.1, 0.2, 0.3, 0.4, 0.5])
        XCTAssertEqual(values.filter(\.isNaN).count, 7)
        XCTAssertEqual(try reader.readMatrix("angular_distance/last_token"),
                       [[0.1, 0.2, 0.3, nil], [0.4, nil, nil, nil], [0.5, nil, nil, nil]])
    }

    func testNestedGroupsAreCreatedAndListed() throws {
        let url = try makeFile { writer in
            try writer.writeDataset("angular_distance/last_token", [1.0, 2.0])
            try writer.writeDataset("angular_distance/all_tokens/mean", [3.0])
            try writer.createGroup("angular_distance")   // already there: left alone
            try writer.createGroup("empty/inner")
            try writer.writeDataset("top", [Int32(1)])
            XCTAssertThrowsError(try writer.createGroup("top"), "a dataset is not a group")
        }
        let reader = try HDF5Reader(url: url)
        XCTAssertEqual(try reader.datasetNames(), ["angular_distance/all_tokens/mean", "angular_distance/last_token", "top"])
        XCTAssertEqual(try reader.groupNames(), ["angular_distance", "angular_distance/all_tokens", "empty", "empty/inner"])
        XCTAssertTrue(reader.contains("/angular_distance/last_token"))
        XCTAssertTrue(reader.contains("empty/inner"))
        XCTAssertFalse(reader.contains("angular_distance/missing"))
        XCTAssertFalse(reader.contains("top/below_a_dataset"))
        XCTAssertEqual(try reader.readDoubles("angular_distance/all_tokens/mean"), [3.0])
        XCTAssertEqual(reader.openObjectCount, 1)
    }

    func testAttributesOfEveryKindOnRootAndDataset() throws {
        let url = try makeFile { writer in
            try writer.writeDataset("d", [1.0], shape: [1, 1])
            try writer.setAttribute("model", "Llama-3.2-1B")
            try writer.setAttribute("fixed", "fixed length", variableLength: false)
            try writer.setAttribute("unicode", "Δ angular ∠ distance", on: "/")
            try writer.setAttribute("empty_fixed", "", variableLength: false)
            try writer.setAttribute("layers", 16)
            try writer.setAttribute("huge", Int.min)
            try writer.setAttribute("threshold", 0.125)
            try writer.setAttribute("undefined", Double.nan)
            try writer.setAttribute("replaced", "first")
            try writer.setAttribute("replaced", 2)   // same name again, other type: replaces
            try writer.setAttribute("units", "radians / π", on: "d")
            try writer.setAttribute("tokens", 4096, on: "/d")
            try writer.setAttribute("scale", -2.5, on: "d")
            XCTAssertThrowsError(try writer.setAttribute("x", 1, on: "missing"))
            XCTAssertThrowsError(try writer.setAttribute("x", "a\0b"))
        }
        let reader = try HDF5Reader(url: url)
        XCTAssertEqual(try reader.stringAttribute("model"), "Llama-3.2-1B")
        XCTAssertEqual(try reader.stringAttribute("fixed"), "fixed length")
        XCTAssertEqual(try reader.stringAttribute("unicode", of: "/"), "Δ angular ∠ distance")
        XCTAssertEqual(try reader.stringAttribute("empty_fixed"), "")
        XCTAssertEqual(try reader.intAttribute("layers"), 16)
        XCTAssertEqual(try reader.intAttribute("huge"), Int.min)
        XCTAssertEqual(try reader.doubleAttribute("threshold"), 0.125)
        XCTAssertTrue(try reader.doubleAttribute("undefined").isNaN)
        XCTAssertEqual(try reader.doubleAttribute("layers"), 16, "integers read as doubles too")
        XCTAssertEqual(try reader.intAttribute("replaced"), 2)
        XCTAssertEqual(try reader.stringAttribute("units", of: "d"), "radians / π")
        XCTAssertEqual(try reader.intAttribute("tokens", of: "d"), 4096)
        XCTAssertEqual(try reader.doubleAttribute("scale", of: "/d"), -2.5)
        XCTAssertTrue(try reader.hasAttribute("model"))
        XCTAssertFalse(try reader.hasAttribute("model", of: "d"))

        assertPruneError(try reader.stringAttribute("nope"), file: url, mentions: "no attribute nope")
        assertPruneError(try reader.intAttribute("model"), file: url, mentions: "not an integer")
        assertPruneError(try reader.stringAttribute("layers"), file: url, mentions: "not a string")
        assertPruneError(try reader.doubleAttribute("model"), file: url, mentions: "not a number")
        assertPruneError(try reader.intAttribute("x", of: "missing"), file: url, mentions: "missing")
        XCTAssertEqual(reader.openObjectCount, 1)
    }

    func testH5dumpReadsTheFile() throws {
        let h5dump = "/usr/bin/h5dump"
        guard FileManager.default.isExecutableFile(atPath: h5dump) else {
            throw XCTSkip("\(h5dump) not installed (Debian package hdf5-tools)")
        }
        let url = try makeFile { writer in
            try writer.writeMatrix("angular_distance/last_token", [[0.25, 0.5], [0.75, nil]])
            try writer.setAttribute("model", "tiny-llama")
            try writer.setAttribute("layers", 3, on: "angular_distance/last_token")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: h5dump)
        process.arguments = [url.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertTrue(output.contains("DATASET \"last_token\""), output)
        XCTAssertTrue(output.contains("H5T_IEEE_F64LE"), output)
        XCTAssertTrue(output.contains("DATASPACE  SIMPLE { ( 2, 2 ) / ( 2, 2 ) }"), output)
        XCTAssertTrue(output.contains("0.25, 0.5"), output)
        XCTAssertTrue(output.contains("0.75, nan") || output.contains("0.75, NaN"), output)
        XCTAssertTrue(output.contains("\"tiny-llama\""), output)
        XCTAssertTrue(output.contains("ATTRIBUTE \"layers\""), output)
    }

    func testOpeningMissingOrForeignFileThrowsNamingIt() throws {
        let missing = directory.appendingPathComponent("absent.h5")
        assertPruneError(try HDF5Reader(url: missing), file: missing, mentions: "no such file")

        let text = directory.appendingPathComponent("notes.h5")
        try Data("this is not HDF5\n".utf8).write(to: text)
        assertPruneError(try HDF5Reader(url: text), file: text, mentions: "not an HDF5 file")

        let empty = directory.appendingPathComponent("empty.h5")
        try Data().write(to: empty)
        assertPruneError(try HDF5Reader(url: empty), file: empty, mentions: "HDF5")
    }

    func testReadErrorsNameTheFile() throws {
        let url = try makeFile { try $0.writeDataset("x", [1.5, 2.5]) }
        let reader = try HDF5Reader(url: url)
        assertPruneError(try reader.readDoubles("y"), file: url, mentions: "no dataset y")
        assertPruneError(try reader.datasetShape("x/z"), file: url, mentions: "no dataset x/z")
        assertPruneError(try reader.readInt64s("x"), file: url, mentions: "does not hold integers")
        assertPruneError(try reader.readMatrix("x"), file: url, mentions: "not 2-D")
        reader.close()
        assertPruneError(try reader.readDoubles("x"), file: url, mentions: "closed")
    }

    func testWriterRejectsBadInput() throws {
        let url = directory.appendingPathComponent("bad.h5")
        let writer = try HDF5Writer(creating: url)
        assertPruneError(try writer.writeDataset("a", [1.0, 2.0, 3.0], shape: [2, 2]), file: url, mentions: "holds 4 values")
        assertPruneError(try writer.writeDataset("a", [Double](), shape: [-1]), file: url, mentions: "negative")
        assertPruneError(try writer.writeDataset("/", [1.0]), file: url, mentions: "needs a name")
        assertPruneError(try writer.writeMatrix("m", [[1, 2, 3]], columns: 2), file: url, mentions: "columns")
        try writer.writeDataset("a", [1.0])
        assertPruneError(try writer.writeDataset("a", [2.0]), file: url, mentions: "already exists")
        assertPruneError(try writer.writeDataset("a/b", [2.0]), file: url, mentions: "cannot create dataset a/b")
        XCTAssertEqual(writer.openObjectCount, 1)
        try writer.finish()
        assertPruneError(try writer.writeDataset("b", [1.0]), file: url, mentions: "already finished")
        assertPruneError(try writer.finish(), file: url, mentions: "already finished")
        XCTAssertEqual(try HDF5Reader(url: url).readDoubles("a"), [1.0])

        let nowhere = directory.appendingPathComponent("no/such/dir/x.h5")
        assertPruneError(try HDF5Writer(creating: nowhere), file: nowhere, mentions: "directory")
    }

    func testUnfinishedWriterLeavesNoFile() throws {
        let url = directory.appendingPathComponent("never.h5")
        do {
            let writer = try HDF5Writer(creating: url)
            try writer.writeDataset("x", [1.0, 2.0])
            XCTAssertFalse(FileManager.default.fileExists(atPath: url.path), "nothing at the final path before finish()")
        }   // released here without finish()
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))

        let discarded = try HDF5Writer(creating: url)
        try discarded.writeDataset("x", [1.0])
        discarded.discard()
        discarded.discard()
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [],
                       "temporary files are cleaned up too")
    }

    func testFinishReplacesAnExistingFile() throws {
        let url = try makeFile("same.h5") { try $0.writeDataset("old", [1.0]) }
        // An abandoned rewrite keeps the old file intact.
        do {
            let writer = try HDF5Writer(creating: url)
            try writer.writeDataset("new", [2.0])
        }
        XCTAssertEqual(try HDF5Reader(url: url).datasetNames(), ["old"])
        _ = try makeFile("same.h5") { try $0.writeDataset("new", [2.0]) }
        XCTAssertEqual(try HDF5Reader(url: url).datasetNames(), ["new"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["same.h5"])
    }

    /// Asserts that `expression` throws a PruneError whose subject is `file` and whose text contains `fragment`.
    private func assertPruneError<T>(_ expression: @autoclosure () throws -> T, file url: URL, mentions fragment: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            guard let error = error as? PruneError else {
                return XCTFail("expected a PruneError, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(error.subject, url.path, file: file, line: line)
            XCTAssertTrue(error.problem.contains(fragment), "\"\(error.problem)\" lacks \"\(fragment)\"", file: file, line: line)
        }
    }
}
