// config.json written back as transformers writes it, every value of the same kind as read.
import Checkpoint
import Foundation

import XCTest

final class ConfigJSONTests: XCTestCase {
    let text = """
    {"rope_theta": 10000.0, "rms_norm_eps": 1e-05, "initializer_range": 0.02, "vocab_size": 49152, "tie": true,
     "bias": false, "pad": null, "name": "a \\"q\\" é\\n", "ids": [1, 2], "empty": [], "nested": {"x": -0.5, "y": {}},
     "big": 12345678901234, "zero": 0, "zero_float": 0.0}
    """

    func testKindsOfNumbersSurviveAndTheLayoutIsPythons() throws {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        let written = String(decoding: try ConfigJSON.data(object), as: UTF8.self)
        for line in ["  \"rope_theta\": 10000.0,", "  \"rms_norm_eps\": 1e-05,", "  \"initializer_range\": 0.02,",
                     "  \"vocab_size\": 49152,", "  \"tie\": true,", "  \"bias\": false,", "  \"pad\": null,",
                     "  \"big\": 12345678901234,", "  \"zero\": 0,", "  \"zero_float\": 0.0", "  \"empty\": [],",
                     "    \"x\": -0.5,", "    \"y\": {}", "  \"name\": \"a \\\"q\\\" é\\n\","] {
            XCTAssertTrue(written.contains(line + "\n"), "missing line \(line) in\n\(written)")
        }
        XCTAssertTrue(written.hasPrefix("{\n  \"bias\""), "keys sorted, two-space indent")
        XCTAssertTrue(written.hasSuffix("}\n"))
        // Reading it back gives the same values.
        let again = try JSONSerialization.jsonObject(with: Data(written.utf8)) as! NSDictionary
        XCTAssertEqual(again, object as! NSDictionary)
    }
}
