// Choosing blocks from a distance matrix, and the calibration set from a dataset.
import Analysis
import Data
import Foundation
import TestSupport
import XCTest

final class BlockRankingTests: XCTestCase {
    // [n][l] for L = 3.
    let d: [[Double?]] = [
        [nil, nil, nil, nil],
        [0.30, 0.10, 0.10, nil],
        [0.40, 0.35, nil, nil],
        [0.50, nil, nil, nil],
    ]

    func testBestAndSecondBestPerSizeWithTiesToTheEarlierStart() {
        let best = BlockRanking.best(d, sizes: [1, 2, 3])
        XCTAssertEqual(best["1"]?.block, RankedBlock(start: 1, size: 1, distance: 0.10))
        XCTAssertEqual(best["1"]?.secondBest, RankedBlock(start: 2, size: 1, distance: 0.10))
        XCTAssertEqual(best["2"]?.layers, [1, 2])
        XCTAssertEqual(best["2"]?.secondBest?.layers, [0, 1])
        XCTAssertEqual(best["3"]?.layers, [0, 1, 2])
        XCTAssertNil(best["3"]?.secondBest)
        XCTAssertTrue(BlockRanking.best(d, sizes: [0, 4]).isEmpty)
    }

    func testLowestInfluenceLayers() {
        let a = LayerAnalysis(model: "m", dataset: nil, samples: 1, tokens: 2, lossTokens: 1, context: 2, layers: 3,
                              blockSizes: [1, 2], fullLoss: 1, angularDistance: AngularDistanceMatrices(lastToken: d, allTokens: d),
                              blockInfluence: [0.3, 0.1, 0.2], removalLoss: nil, earlyExitLoss: nil, earlyExitTop1Agreement: nil)
        XCTAssertEqual(a.lowestInfluenceLayers(1), [1])
        XCTAssertEqual(a.lowestInfluenceLayers(2), [1, 2])
        XCTAssertEqual(a.bestBlock(size: 2)?.layers, [1, 2])
    }

    func testCalibrationSamplesAreTheFirstUsableRecordsTruncated() throws {
        let dir = try Fixtures.temporaryDirectory("calibration")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("d.jsonl")
        let lines = [[1, 2, 3, 4, 5], [7], [1, 9, 9], [1, 2], [3, 3, 3]].map { "{\"input_ids\": \($0)}" }
        try Data(lines.joined(separator: "\n").utf8).write(to: url)
        let samples = try CalibrationSamples.select(from: Dataset(url: url), tokenizer: nil, count: 3, context: 4)
        XCTAssertEqual(samples, [[1, 2, 3, 4], [1, 9, 9], [1, 2]], "one-token records give no prediction and are skipped")

        let text = dir.appendingPathComponent("t.jsonl")
        try Data("{\"text\": \"hello\"}\n".utf8).write(to: text)
        XCTAssertThrowsError(try CalibrationSamples.select(from: Dataset(url: text), tokenizer: nil, count: 1, context: 4))
    }

    func testCalibrationBatchPadsOnTheRight() {
        let batch = CalibrationBatch([[5, 6, 7], [8]])
        XCTAssertEqual(batch.length, 3)
        XCTAssertEqual(batch.tokens, [5, 6, 7, 8, 8, 8])
        XCTAssertEqual(batch.targets, [6, 7, -100, -100, -100, -100])
        XCTAssertEqual(batch.lastRow(of: 0), 2)
        XCTAssertEqual(batch.lastRow(of: 1), 3)
        XCTAssertEqual((0..<6).map { batch.isReal(row: $0) }, [true, true, true, true, false, false])
        XCTAssertEqual(CalibrationBatch.batches([[1], [1, 2, 3], [1, 2]], batchSize: 2).map(\.lengths), [[3, 2], [1]])
    }
}
