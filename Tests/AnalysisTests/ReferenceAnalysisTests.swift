// The analysis of the real stories260K checkpoint on the reference calibration ids against what
// transformers computes in float64 (Tests/Fixtures/reference/stories260K).
import Analysis
import Foundation
import Llama
import TestSupport
import XCTest

final class ReferenceAnalysisTests: XCTestCase {
    /// One analysis with everything switched on, shared by the tests of this class (computed once; a
    /// missing fixture fails each test instead of stopping the process).
    static let computed = Result { () throws -> (analysis: LayerAnalysis, reference: Reference) in
        let ref = try Reference()
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        let samples = ref.idRows("calib_input_ids")
        // Batches of 3 leave a short last batch: batching must not change any figure.
        let analyzer = LayerAnalyzer(model: model, options: AnalysisOptions(batchSize: 3, removalScan: true, earlyExit: true))
        let analysis = analyzer.analyze(samples: samples, source: AnalysisSource(model: ref.modelDirectory.path, dataset: nil,
                                                                                context: samples[0].count))
        return (analysis, ref)
    }

    var run: (analysis: LayerAnalysis, reference: Reference)!
    override func setUpWithError() throws { run = try Self.computed.get() }

    /// Max |ours − reference| over a reference tensor, NaN cells required to match nil cells.
    func maxError(_ ours: [Double?], _ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let ref = try run.reference.tensor(name)
        XCTAssertEqual(ref.count, ours.count, "\(name) size", file: file, line: line)
        var worst = 0.0
        for (i, value) in ours.enumerated() {
            let r = Double(ref[i])
            if r.isNaN {
                XCTAssertNil(value, "\(name)[\(i)] is undefined in the reference", file: file, line: line)
            } else if let value {
                worst = max(worst, abs(value - r))
            } else {
                XCTFail("\(name)[\(i)] is \(r) in the reference but undefined here", file: file, line: line)
            }
        }
        return worst
    }

    func testAngularDistanceBothVariantsMatchTransformers() throws {
        let a = run.analysis
        XCTAssertEqual(a.angularDistance.lastToken.count, a.layers + 1)
        let last = try maxError(a.angularDistance.lastToken.flatMap { $0 }, "analysis.angular_distance.last_token")
        let all = try maxError(a.angularDistance.allTokens.flatMap { $0 }, "analysis.angular_distance.all_tokens")
        assertPinned("analysis.angular", last, within: Tolerance.angularDistance, "last token")
        assertPinned("analysis.angular", all, within: Tolerance.angularDistance, "all tokens")
    }

    func testBlockInfluenceMatchesTransformers() throws {
        let err = try maxError(run.analysis.blockInfluence, "analysis.block_influence")
        assertPinned("analysis.bi", err, within: Tolerance.blockInfluence)
    }

    func testFullAndRemovalLossMatchTransformers() throws {
        let a = run.analysis
        assertPinned("analysis.loss", abs(a.fullLoss - run.reference.double("analysis_full_loss")), within: Tolerance.analysisLoss, "full")
        let err = try maxError(try XCTUnwrap(a.removalLoss), "analysis.removal_loss")
        assertPinned("analysis.loss", err, within: Tolerance.analysisLoss, "removal")
    }

    func testEarlyExitLossAndAgreementMatchTransformers() throws {
        let a = run.analysis
        let loss = try maxError(try XCTUnwrap(a.earlyExitLoss), "analysis.early_exit_loss")
        let agreement = try maxError(try XCTUnwrap(a.earlyExitTop1Agreement), "analysis.early_exit_top1_agreement")
        assertPinned("analysis.loss", loss, within: Tolerance.analysisLoss, "early exit")
        // Agreement moves in steps of 1/376 (one token's top-1 flipping): it must be exact.
        assertPinned("analysis.agreement", agreement, within: Tolerance.agreement, "early-exit top-1")
        // The exit after the last layer is the full model.
        XCTAssertEqual(a.earlyExitTop1Agreement?.last, 1)
    }

    func testBestBlocksEqualTheReference() throws {
        let a = run.analysis
        let expected = try XCTUnwrap(run.reference.value("best_block_last_token") as? [String: [String: Any]])
        XCTAssertEqual(Set(a.bestBlockLastToken.keys), Set(expected.keys))
        for (n, block) in expected {
            let ours = try XCTUnwrap(a.bestBlockLastToken[n])
            XCTAssertEqual(ours.start, (block["start"] as! NSNumber).intValue, "n = \(n)")
            XCTAssertEqual(ours.layers, (block["layers"] as! [NSNumber]).map(\.intValue), "n = \(n)")
            assertPinned("analysis.angular", abs(ours.distance - (block["distance"] as! NSNumber).doubleValue),
                         within: Tolerance.angularDistance, "best block n = \(n)")
        }
    }

    func testCountsDescribeTheCalibrationSet() {
        let a = run.analysis
        XCTAssertEqual(a.samples, 8)
        XCTAssertEqual(a.tokens, 8 * 48)
        XCTAssertEqual(a.lossTokens, 8 * 47)
        XCTAssertEqual(a.layers, 5)
        XCTAssertEqual(a.blockSizes, [1, 2, 3, 4])
    }
}
