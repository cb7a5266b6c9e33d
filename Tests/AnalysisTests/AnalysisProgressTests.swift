// An analysis says what it will do and how far it is: the plan's FLOPs add up phase by phase, every
// layer of every phase moves the progress forward, and the rate is the calibration tokens analysed per
// second at the pace of the work done.
import Analysis
import Foundation
import Llama
import TestSupport
import XCTest

final class AnalysisProgressTests: XCTestCase {
    static let loaded = Result { () throws -> (model: LlamaModel, samples: [[Int32]]) in
        let ref = try Reference()
        return (try LlamaModel.load(directory: ref.modelDirectory), ref.idRows("calib_input_ids"))
    }

    var model: LlamaModel!
    var samples: [[Int32]]!
    override func setUpWithError() throws { (model, samples) = try Self.loaded.get() }

    func analyzer(removal: Bool, earlyExit: Bool) -> LayerAnalyzer {
        LayerAnalyzer(model: model, options: AnalysisOptions(batchSize: 3, removalScan: removal, earlyExit: earlyExit))
    }

    func testPlanCountsEachPhase() {
        let plain = analyzer(removal: false, earlyExit: false).plan(samples: samples)
        XCTAssertEqual(plain.phases, [.fullPass, .statistics])
        XCTAssertEqual(plain.batchFLOPs.count, 3, "8 samples in batches of 3")
        XCTAssertEqual(plain.samples, 8)
        XCTAssertEqual(plain.tokens, 8 * 48)
        let full = analyzer(removal: true, earlyExit: true).plan(samples: samples)
        XCTAssertEqual(full.phases, [.fullPass, .statistics, .removalScan, .earlyExit])
        XCTAssertEqual(full.flops[.fullPass], plain.flops[.fullPass])
        XCTAssertEqual(full.totalFLOPs, AnalysisPlan.Phase.allCases.reduce(0) { $0 + full.flops[$1]! }, accuracy: 1)
        // L = 5: removing layer i runs the 4 − i layers after it, 10 layer passes in all, plus 5 lm_heads;
        // early exit is 5 lm_heads. So removal − 2·exit = 10 layer passes = 2 × (full pass − lm_head).
        let c = model.config
        let lmHead = 2.0 * Double(c.hiddenSize * c.vocabSize) * Double(full.paddedTokens)
        XCTAssertEqual(full.flops[.earlyExit]!, 5 * lmHead, accuracy: 1)
        XCTAssertEqual(full.flops[.removalScan]! - full.flops[.earlyExit]!, 2 * (full.flops[.fullPass]! - lmHead), accuracy: 1)
        // Samples all of length 48: a forward pass is about 2 × parameters × tokens (+ attention).
        XCTAssertEqual(full.flops[.fullPass]! / (2 * Double(model.parameterCount) * 384), 1, accuracy: 0.2)
        XCTAssertTrue(full.summary.last!.hasPrefix("  total: "), full.summary.joined(separator: "\n"))
    }

    func testEveryLayerOfEveryPhaseMovesTheProgressUpTo100Percent() {
        let a = analyzer(removal: true, earlyExit: true)
        let plan = a.plan(samples: samples)
        var lines: [String] = []
        let progress = AnalysisProgress(plan: plan, write: { lines.append($0) }, interval: 0, inPlace: false)
        _ = a.analyze(samples: samples, source: AnalysisSource(model: "m", dataset: nil, context: 48), progress: progress)
        // Per batch: 5 full-pass layers (the first at 0% of a first batch is not printed) + statistics
        // + 5 removals + 5 exits.
        XCTAssertEqual(lines.count, 3 * (6 + 1 + 5 + 5) - 1, lines.joined())
        let percents = lines.map { line -> Double in
            let field = line.split(separator: " ").first { $0.hasSuffix("%") }!
            return Double(field.dropLast())!
        }
        XCTAssertEqual(percents, percents.sorted(), "never goes back")
        XCTAssertEqual(percents.last, 100)
        XCTAssertTrue(lines.last!.hasPrefix("analyze  batch 3/3  early exit 5/5  100%"), lines.last!)
        XCTAssertTrue(lines.contains { $0.contains("removal scan 3/5") })
    }

    func testRateIsTokensAnalysedPerSecondAtTheWorksPace() {
        let plan = analyzer(removal: true, earlyExit: false).plan(samples: samples)
        var clock = Date(timeIntervalSince1970: 0)
        var written = ""
        let progress = AnalysisProgress(plan: plan, write: { written = $0 }, now: { clock }, interval: 1, inPlace: false)
        clock += 10
        let f = progress.fraction(batch: 1, phase: .removalScan, step: 2)
        progress.update(batch: 1, phase: .removalScan, step: 2)
        XCTAssertEqual(f, plan.flopsDone(batch: 1, phase: .removalScan, step: 2) / plan.totalFLOPs)
        XCTAssertGreaterThan(f, 1.0 / 3)
        XCTAssertLessThan(f, 2.0 / 3)
        let rate = String(format: "%.0f tok/s", f * 384 / 10)
        XCTAssertTrue(written.contains(rate), "\(written) should say \(rate)")
        XCTAssertTrue(written.contains("elapsed 0:10"), written)
        // Within the interval nothing more is printed.
        clock += 0.5
        progress.update(batch: 1, phase: .removalScan, step: 3)
        XCTAssertTrue(written.contains("removal scan 2/5"), written)
    }
}
