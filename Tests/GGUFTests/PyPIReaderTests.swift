// Our files read by PyPI's gguf package (the reader llama.cpp's own Python tools use): the same keys in the same order
// with the same value types and values, the same tensors with the same types, dimensions, offsets and bytes; and our
// Q8_0 bytes equal to what its quantizer (gguf.quants, a port of ggml's reference rows) makes of the same values.
// Skipped with the reason printed where the Python has no gguf.
import Foundation
import GGUF
import Support
import TestSupport
import XCTest

final class PyPIReaderTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("gguf-pypi") }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    func testStoriesAndTinyBPEFilesReadTheSameInPyPIsReader() throws {
        let python = try requirePython()
        let stories = scratch.appendingPathComponent("stories.gguf")
        _ = try GGUFModelExport.write(model: Fixtures.stories260K, to: stories, fileType: .bf16, force: false)
        let tiny = scratch.appendingPathComponent("tiny.gguf")
        _ = try GGUFModelExport.write(model: try TinyCheckpoints.fixture("headdim-bias-linear-rope", in: scratch), to: tiny,
                                      fileType: nil, force: false)
        let adapter = scratch.appendingPathComponent("adapter")
        try RandomAdapter.write(for: Fixtures.stories260K, to: adapter, rank: 2, alpha: 4)
        let adapterGGUF = scratch.appendingPathComponent("adapter.gguf")
        _ = try GGUFAdapterExport.write(adapter: adapter, model: Fixtures.stories260K, to: adapterGGUF, fileType: .f16, force: false)
        for url in [stories, tiny, adapterGGUF] { try assertSameAsPyPI(url, python: python) }
    }

    func testQ8_0BytesEqualPyPIsQuantizer() throws {
        let python = try requirePython()
        let f32 = scratch.appendingPathComponent("stories-f32.gguf"), q8 = scratch.appendingPathComponent("stories-q8_0.gguf")
        _ = try GGUFModelExport.write(model: Fixtures.stories260K, to: f32, fileType: .f32, force: false)
        _ = try GGUFModelExport.write(model: Fixtures.stories260K, to: q8, fileType: .q8_0, force: false)
        let answer = try PythonVenv.run(python, script: Self.quantizeScript, [f32.path, q8.path])
        XCTAssertEqual(answer.trimmingCharacters(in: .whitespacesAndNewlines), "31 Q8_0 tensors equal")
    }

    func requirePython() throws -> String {
        guard let python = PythonVenv.gguf else {
            throw Fixtures.skip("no Python with PyPI's gguf ($PRUNE_PYTHON or ~/.cache/prune-dev/venv): pip install gguf")
        }
        return python
    }

    /// Keys, value types, values, tensor infos and a checksum of each tensor's bytes, ours against PyPI's reader.
    func assertSameAsPyPI(_ url: URL, python: String) throws {
        let ours = try GGUFReader(url: url)
        let output = try PythonVenv.run(python, script: Self.readScript, [url.path])
        let theirs = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        let fields = try XCTUnwrap(theirs["fields"] as? [[Any]])
        XCTAssertEqual(fields.compactMap { $0.first as? String }, ours.metadata.map(\.key), "\(url.lastPathComponent): keys")
        for (field, (key, value)) in zip(fields, ours.metadata) {
            XCTAssertEqual(field[1] as? [Int], Self.typeCodes(value), "\(key): value type")
            XCTAssertTrue(Self.equal(value, field[2]), "\(key): PyPI reads \(String(describing: field[2]).prefix(80))")
        }
        let tensors = try XCTUnwrap(theirs["tensors"] as? [[Any]])
        XCTAssertEqual(tensors.count, ours.tensors.count)
        for (t, info) in zip(tensors, ours.tensors) {
            XCTAssertEqual(t[0] as? String, info.name)
            XCTAssertEqual(t[1] as? Int, Int(info.type.rawValue), info.name)
            XCTAssertEqual(t[2] as? [Int], info.dimensions, info.name)
            XCTAssertEqual(t[3] as? Int, ours.dataStart + info.offset, info.name)
            XCTAssertEqual((t[4] as? NSNumber)?.uint64Value, Self.checksum(try ours.rawBytes(info.name)), "\(info.name): bytes")
        }
    }

    /// Type codes as gguf-py lists them: the value's, then an array's element type.
    static func typeCodes(_ value: GGUFValue) -> [Int] {
        if case .array(let element, _) = value { return [Int(GGUFValueType.array.rawValue), Int(element.rawValue)] }
        return [Int(value.type.rawValue)]
    }

    static func equal(_ value: GGUFValue, _ json: Any) -> Bool {
        switch value {
        case .string(let s): return json as? String == s
        case .bool(let b): return (json as? NSNumber)?.boolValue == b
        case .float32(let f): return (json as? NSNumber).map { Float($0.doubleValue) } == f
        case .float64(let f): return (json as? NSNumber)?.doubleValue == f
        case .array(_, let items):
            guard let list = json as? [Any], list.count == items.count else { return false }
            return zip(items, list).allSatisfy { equal($0, $1) }
        default: return (json as? NSNumber)?.int64Value == value.intValue.map(Int64.init)
        }
    }

    /// Σ byte·(i mod 251 + 1), wrapping: the same in the Python script.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var sum: UInt64 = 0
        for (i, b) in bytes.enumerated() { sum = sum &+ UInt64(b) &* UInt64(i % 251 + 1) }
        return sum
    }

    static let readScript = #"""
import json, sys
import numpy as np
import gguf
reader = gguf.GGUFReader(sys.argv[1])
fields = []
for key, field in reader.fields.items():
    if key.startswith("GGUF."):
        continue
    value = field.contents()
    fields.append([key, [int(t) for t in field.types], value])
tensors = []
for t in reader.tensors:
    raw = np.frombuffer(t.data.tobytes(), dtype=np.uint8).astype(np.uint64)
    weights = (np.arange(raw.size, dtype=np.uint64) % 251) + 1
    tensors.append([t.name, int(t.tensor_type), [int(d) for d in t.shape], int(t.data_offset), int((raw * weights).sum())])
print(json.dumps({"fields": fields, "tensors": tensors}))
"""#

    static let quantizeScript = #"""
import sys
import numpy as np
import gguf
f32 = {t.name: t for t in gguf.GGUFReader(sys.argv[1]).tensors}
equal = 0
for t in gguf.GGUFReader(sys.argv[2]).tensors:
    if t.tensor_type != gguf.GGMLQuantizationType.Q8_0:
        continue
    values = np.asarray(f32[t.name].data, dtype=np.float32)
    ours = np.frombuffer(t.data.tobytes(), dtype=np.uint8)
    theirs = np.frombuffer(gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0).tobytes(), dtype=np.uint8)
    if not np.array_equal(ours, theirs):
        print(f"{t.name}: {int((ours != theirs).sum())} bytes differ")
        sys.exit(0)
    equal += 1
print(f"{equal} Q8_0 tensors equal")
"""#
}
