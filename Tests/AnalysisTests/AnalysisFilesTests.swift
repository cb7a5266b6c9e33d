// analysis.json, analysis.h5 and the two SVGs hold the numbers of the analysis and read back unchanged.
import Analysis
import Foundation
import Llama
import Reports
import TestSupport
import XCTest

final class AnalysisFilesTests: XCTestCase {
    /// Computed once for the class; a missing fixture fails each test instead of stopping the process.
    static let computed = Result { () throws -> LayerAnalysis in
        let ref = try Reference()
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        return LayerAnalyzer(model: model, options: AnalysisOptions(blockSizes: [1, 3], removalScan: true, earlyExit: true))
            .analyze(samples: ref.idRows("calib_input_ids"), source: AnalysisSource(model: ref.modelDirectory.path,
                                                                                    dataset: "calib.jsonl", context: 48))
    }

    var analysis: LayerAnalysis!
    var scratch: URL!
    override func setUpWithError() throws {
        analysis = try Self.computed.get()
        scratch = try Fixtures.temporaryDirectory("analysis-files")
    }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    func testWritesThreeFilesIntoANewDirectory() throws {
        let dir = scratch.appendingPathComponent("a/b")
        let urls = try AnalysisFiles.write(analysis, to: dir)
        XCTAssertEqual(urls.map(\.lastPathComponent), ["analysis.json", "analysis.h5", "analysis.svg", "analysis-layers.svg"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(),
                       ["analysis-layers.svg", "analysis.h5", "analysis.json", "analysis.svg"], "no temporary files left")
    }

    func testJSONReadsBackEqualWithNullForUndefinedCells() throws {
        let url = scratch.appendingPathComponent("analysis.json")
        try AnalysisFiles.writeJSON(analysis, to: url)
        XCTAssertEqual(try AnalysisFiles.readJSON(url), analysis)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let d = (object["angular_distance"] as! [String: Any])["last_token"] as! [[Any]]
        XCTAssertTrue(d[0][0] is NSNull)
        XCTAssertTrue(d[2][5] is NSNull)
        for key in ["block_influence", "removal_loss", "early_exit_loss", "early_exit_top1_agreement", "full_loss",
                    "best_block_last_token", "model", "dataset", "samples", "tokens", "context"] {
            XCTAssertNotNil(object[key], key)
        }
        let best = (object["best_block_last_token"] as! [String: Any])["3"] as! [String: Any]
        XCTAssertEqual((best["layers"] as! [NSNumber]).map(\.intValue), [1, 2, 3])
        XCTAssertNotNil(best["second_best"] as? [String: Any])
        XCTAssertEqual(Set((object["best_block_last_token"] as! [String: Any]).keys), ["1", "3"])
    }

    func testHDF5ReadsBackTheSameNumbers() throws {
        let url = scratch.appendingPathComponent("analysis.h5")
        try AnalysisFiles.writeHDF5(analysis, to: url)
        let a: LayerAnalysis = analysis
        let h5 = try HDF5Reader(url: url)
        defer { h5.close() }
        XCTAssertEqual(try h5.datasetShape("angular_distance/last_token"), [6, 6])
        XCTAssertEqual(try h5.readMatrix("angular_distance/last_token"), a.angularDistance.lastToken)
        XCTAssertEqual(try h5.readMatrix("angular_distance/all_tokens"), a.angularDistance.allTokens)
        XCTAssertEqual(try h5.readDoubles("block_influence"), a.blockInfluence)
        XCTAssertEqual(try h5.readDoubles("removal_loss"), a.removalLoss)
        XCTAssertEqual(try h5.readDoubles("early_exit_loss"), a.earlyExitLoss)
        XCTAssertEqual(try h5.readDoubles("early_exit_top1_agreement"), a.earlyExitTop1Agreement)
        XCTAssertEqual(try h5.stringAttribute("model"), a.model)
        XCTAssertEqual(try h5.stringAttribute("dataset"), "calib.jsonl")
        XCTAssertEqual(try h5.intAttribute("samples"), 8)
        XCTAssertEqual(try h5.intAttribute("tokens"), 384)
        XCTAssertEqual(try h5.intAttribute("context"), 48)
        XCTAssertEqual(try h5.intAttribute("layers"), 5)
        XCTAssertEqual(try h5.doubleAttribute("full_loss"), a.fullLoss)
    }

    func testHeatMapHasOneCellPerDefinedBlock() throws {
        let svg = AnalysisFiles.heatMap(analysis)
        // n = 1…5 with l = 0…5−n: 5 + 4 + 3 + 2 + 1 blocks.
        XCTAssertEqual(svg.components(separatedBy: "<rect class=\"cell\"").count - 1, 15)
        XCTAssertTrue(svg.contains("block size n"))
        XCTAssertTrue(svg.contains("start layer l"))
        // The best block of each size n = 1…4 is outlined (the report's: n = 1 at layer 3, n = 3 at 1-3).
        let marks = svg.components(separatedBy: "<rect class=\"mark\"").dropFirst()
        XCTAssertEqual(marks.count, 4)
        let cells = svg.components(separatedBy: "<rect class=\"cell\"").dropFirst()
        func cellX(_ n: Int, _ l: Int) -> Double? {
            cells.first { $0.contains("block size n \(n), start layer l \(l):") }.flatMap { attribute("x", in: $0) }
        }
        XCTAssertEqual(attribute("x", in: marks[marks.startIndex]), cellX(1, 3).map { $0 + 3 })
        XCTAssertEqual(attribute("x", in: marks[marks.startIndex + 2]), cellX(3, 1).map { $0 + 3 })
    }

    /// The number in ` name="…"` of an SVG element's text.
    func attribute(_ name: String, in element: String) -> Double? {
        guard let start = element.range(of: " \(name)=\"") else { return nil }
        return Double(element[start.upperBound...].prefix { $0 != "\"" })
    }

    func testLayerProfileHasAPanelPerMeasurement() {
        let svg = AnalysisFiles.layerProfile(analysis)
        XCTAssertEqual(svg.components(separatedBy: "class=\"panel-title\"").count - 1, 3)
        XCTAssertEqual(svg.components(separatedBy: "class=\"point\"").count - 1, 3 * 5)
        XCTAssertTrue(svg.contains("Block Influence"))
        XCTAssertTrue(svg.contains("Loss without layer l"))
        XCTAssertTrue(svg.contains("Early-exit loss"))
        // Layer 2 has the lowest Block Influence: its point is circled.
        XCTAssertTrue(svg.contains("<title>layer 2: \(String(format: "%.6g", analysis.blockInfluence[2]))</title>"))
        XCTAssertEqual(svg.components(separatedBy: "class=\"lowest\"").count - 1, 2)
    }

    func testReportNamesTheBestBlocksAndRanksInfluence() {
        let text = AnalysisReport.text(analysis)
        XCTAssertTrue(text.contains("   1  3             0.1324"), text)
        XCTAssertTrue(text.contains("   3  1-3           0.2671"), text)
        XCTAssertTrue(text.contains("   1      2   0.1239"), text)   // layer 2 has the lowest BI
        XCTAssertTrue(text.contains("loss with one layer removed"), text)
        XCTAssertTrue(text.contains("early exit"), text)
    }
}
