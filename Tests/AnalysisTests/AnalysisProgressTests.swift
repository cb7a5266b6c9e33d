// An analysis says what it will do and how far it is: the plan's FLOPs add up phase by phase, and every
// layer of every phase moves the progress forward by what it costs.
import Analysis
import Llama
import Support
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
        var events: [ProgressEvent] = []
        _ = a.analyze(samples: samples, source: AnalysisSource(model: "m", dataset: nil, context: 48),
                      progress: AnalysisProgress(plan: plan, sink: { events.append($0) }))
        let steps = events.compactMap { e -> (batch: Int, phase: String, step: Int, steps: Int, fraction: Double, elapsed: Double)? in
            guard case let .analysis(batch, batches, phase, step, steps, fraction, tokens, elapsed) = e, batches == 3, tokens == 8 * 48 else { return nil }
            return (batch, phase, step, steps, fraction, elapsed)
        }
        // Per batch: 5 full-pass layers (the first at 0% of a first batch) + statistics + 5 removals + 5 exits.
        XCTAssertEqual(steps.count, events.count, "every event an analysis of 3 batches of 384 tokens")
        XCTAssertEqual(steps.count, 3 * (6 + 1 + 5 + 5))
        XCTAssertEqual(steps.first?.fraction, 0)
        XCTAssertEqual(steps.map(\.fraction), steps.map(\.fraction).sorted(), "never goes back")
        XCTAssertEqual(steps.map(\.elapsed), steps.map(\.elapsed).sorted(), "one clock")
        XCTAssertEqual(steps.last?.fraction ?? 0, 1, accuracy: 1e-12)
        XCTAssertTrue(steps.last.map { $0.batch == 2 && $0.phase == "early exit" && $0.step == 5 && $0.steps == 5 } ?? false, "\(steps.last!)")
        XCTAssertTrue(steps.contains { $0.phase == "removal scan" && $0.step == 3 && $0.steps == 5 })
    }

    func testAStepWeighsWhatItCosts() {
        let plan = analyzer(removal: true, earlyExit: false).plan(samples: samples)
        var heard: ProgressEvent?
        let progress = AnalysisProgress(plan: plan, sink: { heard = $0 })
        progress.update(batch: 1, phase: .removalScan, step: 2)
        let f = plan.flopsDone(batch: 1, phase: .removalScan, step: 2) / plan.totalFLOPs
        XCTAssertEqual(progress.fraction(batch: 1, phase: .removalScan, step: 2), f)
        XCTAssertGreaterThan(f, 1.0 / 3)
        XCTAssertLessThan(f, 2.0 / 3)
        guard case let .analysis(batch, batches, phase, step, steps, fraction, tokens, _)? = heard else { return XCTFail("\(String(describing: heard))") }
        XCTAssertEqual([batch, batches, step, steps, tokens], [1, 3, 2, 5, 384])
        XCTAssertEqual(phase, "removal scan")
        XCTAssertEqual(fraction, f)
    }
}
