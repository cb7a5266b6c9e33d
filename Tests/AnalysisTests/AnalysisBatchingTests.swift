// Samples of unequal length share padded batches: padding must not change any figure, the last-token
// variant must use each sample's last real token, and the removal scan's resumed passes must give what a
// full pass with the layer skipped gives.
import Analysis
import Foundation
import Llama
import TestSupport
import XCTest

final class AnalysisBatchingTests: XCTestCase {
    /// The model and prefixes of the reference calibration rows, of lengths 48, 31, 7, 2 and 20; loaded once,
    /// a missing fixture fails each test instead of stopping the process.
    static let loaded = Result { () throws -> (model: LlamaModel, samples: [[Int32]]) in
        let ref = try Reference()
        let rows = ref.idRows("calib_input_ids")
        return (try LlamaModel.load(directory: ref.modelDirectory), zip(rows, [48, 31, 7, 2, 20]).map { Array($0.prefix($1)) })
    }

    var model: LlamaModel!
    var samples: [[Int32]]!
    override func setUpWithError() throws { (model, samples) = try Self.loaded.get() }

    func analyze(batchSize: Int) -> LayerAnalysis {
        LayerAnalyzer(model: model, options: AnalysisOptions(batchSize: batchSize, removalScan: true, earlyExit: true))
            .analyze(samples: samples, source: AnalysisSource(model: "stories260K", dataset: nil, context: 48))
    }

    func maxDifference(_ a: [Double?], _ b: [Double?]) -> Double {
        XCTAssertEqual(a.count, b.count)
        var worst = 0.0
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x == nil, y == nil)
            if let x, let y { worst = max(worst, abs(x - y)) }
        }
        return worst
    }

    func testPaddedBatchesGiveWhatOneSampleAtATimeGives() {
        let alone = analyze(batchSize: 1), padded = analyze(batchSize: 4)
        XCTAssertEqual(padded.tokens, 48 + 31 + 7 + 2 + 20)
        XCTAssertEqual(padded.lossTokens, padded.tokens - 5)
        XCTAssertEqual(alone.tokens, padded.tokens)
        let pairs: [([Double?], [Double?])] = [
            (alone.angularDistance.lastToken.flatMap { $0 }, padded.angularDistance.lastToken.flatMap { $0 }),
            (alone.angularDistance.allTokens.flatMap { $0 }, padded.angularDistance.allTokens.flatMap { $0 }),
            (alone.blockInfluence, padded.blockInfluence), (alone.removalLoss!, padded.removalLoss!),
            (alone.earlyExitLoss!, padded.earlyExitLoss!), (alone.earlyExitTop1Agreement!, padded.earlyExitTop1Agreement!),
            ([alone.fullLoss], [padded.fullLoss]),
        ]
        let figures = [("last-token d", Tolerance.angularDistance), ("all-token d", Tolerance.angularDistance),
                       ("BI", Tolerance.blockInfluence), ("removal loss", Tolerance.analysisLoss), ("early-exit loss", Tolerance.analysisLoss),
                       ("early-exit agreement", Tolerance.agreement), ("full loss", Tolerance.analysisLoss)]
        for ((name, tolerance), (a, b)) in zip(figures, pairs) {
            assertPinned("analysis.batching", maxDifference(a, b), within: tolerance, name)
        }
    }

    /// The statistics computed the plain way, in Double, from each sample's own forward pass.
    func testFiguresEqualAPlainComputationFromTheHiddenStates() {
        let L = model.config.numHiddenLayers, C = model.config.hiddenSize
        var last = [[Double]](repeating: [Double](repeating: 0, count: L + 1), count: L + 1)
        var all = last
        var bi = [Double](repeating: 0, count: L)
        var tokens = 0
        var removal = [LossTally](repeating: LossTally(), count: L)
        for s in samples {
            let h = model.forward(tokens: s, batch: 1, length: s.count, captureHiddenStates: true).hiddenStates
            func cosine(_ a: Int, _ b: Int, _ t: Int) -> Double {
                var dot = 0.0, na = 0.0, nb = 0.0
                for c in 0..<C {
                    let x = Double(h[a][t * C + c]), y = Double(h[b][t * C + c])
                    dot += x * y; na += x * x; nb += y * y
                }
                return dot / (na.squareRoot() * nb.squareRoot())
            }
            for t in 0..<s.count {
                for n in 1...L {
                    for l in 0...(L - n) {
                        let d = acos(min(1, max(-1, cosine(l, l + n, t)))) / .pi
                        all[n][l] += d
                        if t == s.count - 1 { last[n][l] += d }
                    }
                }
                for i in 0..<L { bi[i] += cosine(i, i + 1, t) }
                tokens += 1
            }
            for i in 0..<L {
                let logits = model.forward(tokens: s, batch: 1, length: s.count, skipping: [i]).logits
                removal[i].add(NextTokenLoss.tally(logits: logits, targets: NextTokenLoss.shiftedTargets(tokens: s, batch: 1, length: s.count),
                                                   vocab: model.config.vocabSize))
            }
        }
        let a = analyze(batchSize: 3)
        var dError = 0.0, biError = 0.0, removalError = 0.0
        for n in 1...L {
            for l in 0...(L - n) {
                dError = max(dError, abs(a.angularDistance.lastToken[n][l]! - last[n][l] / Double(samples.count)),
                             abs(a.angularDistance.allTokens[n][l]! - all[n][l] / Double(tokens)))
            }
        }
        for i in 0..<L {
            biError = max(biError, abs(a.blockInfluence[i] - (1 - bi[i] / Double(tokens))))
            removalError = max(removalError, abs(a.removalLoss![i] - removal[i].mean))
        }
        assertPinned("analysis.plain", dError, within: Tolerance.angularDistance, "angular distance vs per-sample Double")
        assertPinned("analysis.plain", biError, within: Tolerance.blockInfluence, "BI vs per-sample Double")
        assertPinned("analysis.plain", removalError, within: Tolerance.analysisLoss, "removal loss vs per-sample passes")
        XCTAssertNil(a.angularDistance.lastToken[0][0])
        XCTAssertNil(a.angularDistance.lastToken[2][L - 1])
        XCTAssertNotNil(a.angularDistance.lastToken[L][0])
    }

    func testOptionalScansAreLeftOutUnlessAsked() throws {
        let a = LayerAnalyzer(model: model).analyze(samples: samples, source: AnalysisSource(model: "m", dataset: nil, context: 48))
        XCTAssertNil(a.removalLoss)
        XCTAssertNil(a.earlyExitLoss)
        XCTAssertNil(a.earlyExitTop1Agreement)
        let json = String(decoding: try JSONEncoder().encode(a), as: UTF8.self)
        XCTAssertFalse(json.contains("removal_loss"))
    }
}
