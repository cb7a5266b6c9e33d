// exit:auto's choice: the expected tokens per pass and cost of each (E, K) from measured pieces, and that the
// measured pieces of a real model are sane (a verification row costs less than a step; more rows cost more).
import Foundation
import Generation
import Llama
import TestSupport
import XCTest

final class SpeculationChoiceTests: XCTestCase {
    func testPredictionIsTheExpectedTokensOverThePassCost() throws {
        // 4 layers at 1 s for one row, 1.5 s for 2 or 3 rows; head 2 s (3 s for more rows); draft head 0.5 s.
        let cost = DecodeCost(layer: [1, 1.5, 1.5], head: [2, 3, 3], draftHead: 0.5)
        let agreement = [0.2, 0.9, 0.95, 1.0]
        let ranked = SpeculationChoice.ranked(agreement: agreement, cost: cost, maxDraftTokens: 2)
        XCTAssertEqual(ranked.count, 3 * 2)
        let plain = 4.0 * 1 + 2
        // E = 2, K = 2: tokens 1 + .9 + .81; pass = 2·(2·1 + .5) + 2·1 + 2·1.5 + 3.
        let e2k2 = try XCTUnwrap(ranked.first { $0.exit == 2 && $0.draftTokens == 2 })
        XCTAssertEqual(e2k2.tokensPerPass, 2.71, accuracy: 1e-12)
        XCTAssertEqual(e2k2.predictedSpeedup, 2.71 / (5 + 2 + 3 + 3) * plain, accuracy: 1e-12)
        XCTAssertEqual(ranked.first?.exit, 2, "\(ranked.map { ($0.exit, $0.draftTokens, $0.predictedSpeedup) })")
        XCTAssertTrue(zip(ranked, ranked.dropFirst()).allSatisfy { $0.predictedSpeedup >= $1.predictedSpeedup })
        // No agreement: nothing beats plain.
        let none = SpeculationChoice.ranked(agreement: [0, 0, 0, 1], cost: cost, maxDraftTokens: 2)
        XCTAssertLessThan(none.first?.predictedSpeedup ?? 0, 1)
        // Full agreement saturates below the clip (α < 1 keeps the sum finite).
        let all = SpeculationChoice.ranked(agreement: [1, 1, 1, 1], cost: cost, maxDraftTokens: 2)
        XCTAssertTrue(all.allSatisfy { $0.tokensPerPass.isFinite && $0.tokensPerPass <= Double($0.draftTokens + 1) })
    }

    func testMeasuredCostsOfARealModel() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let cost = DecodeCost.measure(model, rows: 5, cachedPositions: 32)
        XCTAssertEqual(cost.layer.count, 5)
        XCTAssertTrue(cost.layer.allSatisfy { $0 > 0 && $0.isFinite } && cost.head.allSatisfy { $0 > 0 }, "\(cost)")
        XCTAssertEqual(cost.draftHead, cost.head[0], "no reduced head: the draft scores with the full one")
        XCTAssertGreaterThan(cost.step(layers: 5), 5 * cost.layer[0])
    }
}
