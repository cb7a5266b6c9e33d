// Layer lists as the CLI takes them: 0-based, inclusive ranges, comma-separated.
import Support
import Surgery
import XCTest

final class LayerSelectionTests: XCTestCase {
    func testRangesAreInclusiveAndListsCombine() throws {
        XCTAssertEqual(try LayerSelection(parsing: "20-27").layers, Array(20...27))
        XCTAssertEqual(try LayerSelection(parsing: "20-27").layers.count, 8)
        XCTAssertEqual(try LayerSelection(parsing: "3,7-9").layers, [3, 7, 8, 9])
        XCTAssertEqual(try LayerSelection(parsing: "5").layers, [5])
        XCTAssertEqual(try LayerSelection(parsing: "0-0").layers, [0])
        XCTAssertEqual(try LayerSelection(parsing: " 9 , 1-2 ").layers, [1, 2, 9])
    }

    func testRepeatsAndOverlapsAreRefused() throws {
        for (text, twice) in [("3,3", 3), ("2-4,3", 3), ("3,2-4", 3), ("0-5,5-7", 5)] {
            XCTAssertThrowsError(try LayerSelection(parsing: text), text) { error in
                XCTAssertEqual("\(error)", "--layers: \(twice) is given twice in \"\(text)\"")
            }
        }
        XCTAssertEqual(LayerSelection([3, 3, 2]).layers, [2, 3], "a list built in code (not typed) merges repeats")
    }

    func testMalformedTextIsRefusedNamingTheOption() {
        for bad in ["", " ", "a", "1-", "-1", "1--2", "1-2-3", "3-1", "1,,2", "1,", "+1", "1.5", "2 3", "٣"] {
            XCTAssertThrowsError(try LayerSelection(parsing: bad, option: "--layers"), "\"\(bad)\"") { error in
                XCTAssertEqual((error as? PruneError)?.subject, "--layers", "\"\(bad)\"")
            }
        }
    }

    func testBackwardsRangeSaysHowToWriteIt() {
        XCTAssertThrowsError(try LayerSelection(parsing: "9-7")) { error in
            XCTAssertTrue("\(error)".contains("7-9"), "\(error)")
        }
    }

    func testValidationAgainstTheLayerCount() throws {
        XCTAssertNoThrow(try LayerSelection(parsing: "0-3").validate(layerCount: 5))
        XCTAssertNoThrow(try LayerSelection(parsing: "4").validate(layerCount: 5))
        XCTAssertThrowsError(try LayerSelection(parsing: "3-5").validate(layerCount: 5)) { error in
            XCTAssertTrue("\(error)".contains("layer 5 is outside 0…4"), "\(error)")
        }
        XCTAssertThrowsError(try LayerSelection(parsing: "0-4").validate(layerCount: 5)) { error in
            XCTAssertTrue("\(error)".contains("leave no layer"), "\(error)")
        }
    }

    func testComplementAndDescription() throws {
        let s = try LayerSelection(parsing: "2-3,7")
        XCTAssertEqual(s.complement(layerCount: 9), [0, 1, 4, 5, 6, 8])
        XCTAssertEqual(s.description, "2-3,7")
        XCTAssertEqual(LayerSelection.ranges([0, 1, 4, 6, 7, 8]), [0...1, 4...4, 6...8])
    }

    func testMergekitRangesAreHalfOpen() throws {
        let yaml = MergekitPassthrough.yaml(model: "m", kept: [0, 1, 4], dropped: try LayerSelection(parsing: "2-3"), dtype: "bfloat16")
        XCTAssertTrue(yaml.contains("layer_range: [0, 2]"), yaml)
        XCTAssertTrue(yaml.contains("layer_range: [4, 5]"), yaml)
        XCTAssertTrue(yaml.contains("half-open"), yaml)
        XCTAssertTrue(yaml.contains("merge_method: passthrough"), yaml)
        XCTAssertTrue(yaml.contains("dtype: bfloat16"), yaml)
    }
}
