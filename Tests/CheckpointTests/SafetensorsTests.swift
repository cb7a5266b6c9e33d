// safetensors: bit-exact round trips, and every malformed header refused with a message naming the problem.
import Checkpoint
import Foundation
import Support
import Tensor
import TestSupport
import XCTest

final class SafetensorsTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("safetensors") }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func testRoundTripIsBitExactForEveryDType() throws {
        let a = Tensor(shape: [3, 5], values: (0..<15).map { Float($0) * 0.37 - 2.1 })
        let special = Tensor(shape: [6], values: [0, -0.0, .infinity, -.infinity, 1e-40, 65504])
        let url = dir.appendingPathComponent("x.safetensors")
        try SafetensorsWriter.write([
            SafetensorsItem(name: "a.f32", tensor: a, dtype: .F32),
            SafetensorsItem(name: "a.bf16", tensor: a, dtype: .BF16),
            SafetensorsItem(name: "a.f16", tensor: a, dtype: .F16),
            SafetensorsItem(name: "special", tensor: special),
            SafetensorsItem(name: "empty", tensor: Tensor(zeros: [0, 4])),
        ], metadata: ["note": "quote \" and \\ backslash"], to: url)
        let f = try SafetensorsFile(url: url)
        XCTAssertEqual(f.metadata["note"], "quote \" and \\ backslash")
        XCTAssertEqual(f.metadata["format"], "pt")
        assertEqualElements(try f.tensor("a.f32").array.map(\.bitPattern), a.array.map(\.bitPattern))
        assertEqualElements(try f.tensor("special").array.map(\.bitPattern), special.array.map(\.bitPattern))
        XCTAssertEqual(try f.tensor("empty").shape, [0, 4])
        // Half-precision values survive a second round trip unchanged (the first one rounds).
        for (name, dtype) in [("a.bf16", SafetensorsDType.BF16), ("a.f16", .F16)] {
            let once = try f.tensor(name)
            XCTAssertLessThan(once.maxAbsDifference(a), dtype == .BF16 ? 0.02 : 0.003)
            let url2 = dir.appendingPathComponent("\(name).safetensors")
            try SafetensorsWriter.write([SafetensorsItem(name: "t", tensor: once, dtype: dtype)], to: url2)
            let f2 = try SafetensorsFile(url: url2)  // raw bytes live as long as their file object
            let raw1 = try f.rawBytes(name), raw2 = try f2.rawBytes("t")
            assertEqualElements(Array(raw1), Array(raw2), "\(name) bytes")
        }
        // Raw copies keep bytes and dtype.
        let url3 = dir.appendingPathComponent("copy.safetensors")
        let e = f.entryByName["a.bf16"]!
        try SafetensorsWriter.write([SafetensorsItem(name: "c", dtype: e.dtype, shape: e.shape, bytes: try f.rawBytes("a.bf16"))], to: url3)
        let f3 = try SafetensorsFile(url: url3)
        assertEqualElements(Array(try f3.rawBytes("c")), Array(try f.rawBytes("a.bf16")))
    }

    func testBF16RoundsToNearestEven() throws {
        // 1 + 2^-8 is halfway between two bf16 values: it rounds to the even one (1.0).
        let t = Tensor(shape: [2], values: [1 + 1.0 / 256, 1 + 3.0 / 256])
        let url = dir.appendingPathComponent("r.safetensors")
        try SafetensorsWriter.write([SafetensorsItem(name: "t", tensor: t, dtype: .BF16)], to: url)
        XCTAssertEqual(try SafetensorsFile(url: url).tensor("t").array, [1.0, 1 + 4.0 / 256])
    }

    /// Writes a file with `header` (JSON text) and `dataBytes` of payload.
    func file(header: String, dataBytes: Int, declaredLength: UInt64? = nil) throws -> URL {
        let url = dir.appendingPathComponent("bad-\(UUID().uuidString).safetensors")
        var d = Data()
        var n = (declaredLength ?? UInt64(header.utf8.count)).littleEndian
        d.append(Data(bytes: &n, count: 8))
        d.append(Data(header.utf8))
        d.append(Data(count: dataBytes))
        try d.write(to: url)
        return url
    }

    func assertRefused(_ url: URL, mentions words: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(url: url), file: file, line: line) { error in
            guard let e = error as? PruneError else { return XCTFail("not a PruneError: \(error)", file: file, line: line) }
            XCTAssertEqual(e.subject, url.path, file: file, line: line)
            XCTAssertTrue(e.problem.contains(words), "“\(e.problem)” should mention “\(words)”", file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
        }
    }

    func testMalformedFilesAreRefusedWithTheProblemNamed() throws {
        let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertNoThrow(try SafetensorsFile(url: try file(header: ok, dataBytes: 8)))
        // Truncated: fewer than 8 bytes, header longer than the file, data cut short.
        let tiny = dir.appendingPathComponent("tiny.safetensors")
        try Data([1, 2, 3]).write(to: tiny)
        assertRefused(tiny, mentions: "truncated")
        assertRefused(try file(header: ok, dataBytes: 8, declaredLength: 500), mentions: "truncated")
        assertRefused(try file(header: ok, dataBytes: 5), mentions: "past the end")
        // Huge header length.
        assertRefused(try file(header: ok, dataBytes: 8, declaredLength: 1 << 40), mentions: "exceeds")
        // Bad JSON, wrong JSON shape.
        assertRefused(try file(header: "{\"a\": [1, 2", dataBytes: 0), mentions: "not valid JSON")
        assertRefused(try file(header: "[1, 2]", dataBytes: 0), mentions: "not a JSON object")
        // Unknown dtype.
        assertRefused(try file(header: #"{"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8), mentions: "unknown dtype")
        // Shape × dtype size ≠ span.
        assertRefused(try file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8), mentions: "needs 12 bytes")
        // Overlapping spans.
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertRefused(try file(header: overlap, dataBytes: 12), mentions: "overlap")
        // Offsets out of order, non-integer shape, missing fields.
        assertRefused(try file(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, dataBytes: 8), mentions: "out of order")
        assertRefused(try file(header: #"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, dataBytes: 8), mentions: "malformed shape")
        assertRefused(try file(header: #"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8), mentions: "no dtype")
        // A missing file.
        assertRefused(dir.appendingPathComponent("absent.safetensors"), mentions: "not found")
    }

    func testWriterLeavesNoFileWhenTheDirectoryIsMissing() {
        let url = dir.appendingPathComponent("no/such/dir/x.safetensors")
        XCTAssertThrowsError(try SafetensorsWriter.write([SafetensorsItem(name: "t", tensor: Tensor(zeros: [2]))], to: url))
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
    }
}
