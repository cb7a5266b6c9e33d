// Cuts that change the layer before the removed block (training-free): ReplaceMe's least-squares map folded
// into its down_proj, LaCo's merged differences. Each writes a plain checkpoint; the map is the best linear fit
// (no worse than deletion), folding it changes exactly what it should, and what cannot be done is refused.
import Analysis
import Checkpoint
import Data
import Foundation
import Jobs
import Llama
import Surgery
import TestSupport
import XCTest

final class CutReplacementTests: XCTestCase {
    var scratch: URL!
    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("cut-replacement") }
    override func tearDown() { if let scratch { try? FileManager.default.removeItem(at: scratch) } }

    let source = ModelSource(path: Fixtures.stories260K.path, parallelism: .init(threads: 1))
    var calibration: AnalyzeOptions { AnalyzeOptions(dataset: Fixtures.kjvValid, samples: 8, context: 128, batchSize: 3) }

    func cut(_ layers: String, _ replace: CutReplacement?, _ name: String, force: Bool = false) throws -> URL {
        let out = scratch.appendingPathComponent(name)
        let options = CutOptions(method: .layers(layers), output: out, force: force, replace: replace)
        _ = try CutJob.run(source, options: options, quiet: true, log: .silent)
        return out
    }

    func testReplaceMeFoldsTheBestLinearMapIntoTheLayerBefore() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let samples = try CalibrationSamples.select(from: try Dataset(url: Fixtures.kjvValid), tokenizer: try source.optionalTokenizer(),
                                                    count: 8, context: 128)
        let maps = try LinearReplacement.estimate(model: model, samples: samples, removing: [2, 3], batchSize: 3)
        XCTAssertEqual(maps.count, 1)
        let map = maps[0]
        XCTAssertEqual(map.layerBefore, 1)
        XCTAssertEqual(map.removed, 2...3)
        XCTAssertEqual(map.tokens, samples.map(\.count).reduce(0, +), "every real token, no padding")
        XCTAssertLessThan(map.relativeError, map.deletionRelativeError, "the least-squares map beats T = I")
        XCTAssertGreaterThan(map.relativeError, 0)

        // In the cut model, the stream leaving the repaired layer (new layer 1) is Y + M·T of the original's layer 1.
        let out = try cut("2-3", .replaceme(calibration), "replaceme")
        let cut = try LlamaModel.load(directory: out)
        XCTAssertEqual(cut.config.numHiddenLayers, 3)
        let tokens = Array(samples[0].prefix(20)), n = tokens.count, C = model.config.hiddenSize
        var expected = [Double](repeating: 0, count: n * C)
        _ = model.forward(tokens: tokens, batch: 1, length: n, observeBlock: { l, y, h in
            guard l == 1 else { return }
            for r in 0..<n {
                for j in 0..<C {
                    var s = Double(y[r * C + j])
                    for k in 0..<C { s += Double(h[r * C + k] - y[r * C + k]) * map.transform[k * C + j] }
                    expected[r * C + j] = s
                }
            }
        })
        var got = [Float]()
        _ = cut.forward(tokens: tokens, batch: 1, length: n, observe: { l, h in
            if l == 2 { got = Array(UnsafeBufferPointer(start: h, count: n * C)) }
        })
        let scale = expected.map(abs).max()!
        let worst = zip(got, expected).map { abs(Double($0) - $1) }.max()!
        XCTAssertLessThan(worst / scale, 1e-5, "repaired layer's output vs Y + M·T: \(worst) of \(scale)")

        let origin = try JSONDecoder().decode(CutOrigin.self, from: Data(contentsOf: out.appendingPathComponent(CutOrigin.fileName)))
        XCTAssertEqual(origin.repair, "replaceme")
        let card = try String(contentsOf: out.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(card.contains("(ReplaceMe)"), "the card says the layer before was changed")
    }

    func testLaCoMergesTheBlocksDifferencesIntoTheLayerBefore() throws {
        let out = try cut("2-3", .laco, "laco")
        let original = try CheckpointTensors(directory: Fixtures.stories260K)
        let merged = try CheckpointTensors(directory: out)
        for p in Projection.allCases {
            let name = WeightNames.projection(p, layer: 1)
            let (w1, w2, w3) = (try original.tensor(name), try original.tensor(WeightNames.projection(p, layer: 2)),
                                try original.tensor(WeightNames.projection(p, layer: 3)))
            let got = try merged.tensor(name)
            for i in stride(from: 0, to: got.count, by: 97) {
                XCTAssertEqual(got.data[i], w2.data[i] + w3.data[i] - w1.data[i], accuracy: 1e-6, "\(name)[\(i)]")
            }
            // The layer after the block (old 4, new 2) is copied.
            XCTAssertEqual(try merged.tensor(WeightNames.projection(p, layer: 2)).data[5], try original.tensor(WeightNames.projection(p, layer: 4)).data[5])
        }
        XCTAssertEqual(try merged.tensor(WeightNames.inputNorm(layer: 1)).data[3], try original.tensor(WeightNames.inputNorm(layer: 1)).data[3],
                       "norms are not merged")
        XCTAssertEqual(try LlamaModel.load(directory: out).config.numHiddenLayers, 3)
    }

    func testABlockAtLayerZeroHasNoLayerBeforeIt() {
        for replace: CutReplacement in [.laco, .replaceme(calibration)] {
            XCTAssertThrowsError(try cut("0-1", replace, "zero", force: true), "\(replace)") { error in
                XCTAssertTrue("\(error)".contains("start at layer 0"), "\(error)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("zero").path), "nothing written")
        }
    }

    func testReplaceMeNeedsAsManyTokensAsTheModelIsWide() {
        var few = calibration
        (few.samples, few.context) = (1, 16)   // 16 tokens for a 64-wide map
        XCTAssertThrowsError(try cut("2-3", .replaceme(few), "few")) { error in
            XCTAssertTrue("\(error)".contains("not determined by 16 calibration tokens"), "\(error)")
        }
    }

    /// An existing OUT without --force is refused before any calibration: no analysis or ReplaceMe pass runs (no
    /// progress is heard, the calibration file is never opened) and OUT keeps what it held.
    func testAnExistingOutputIsRefusedBeforeAnyCalibration() throws {
        let out = scratch.appendingPathComponent("taken")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let marker = out.appendingPathComponent("keep.txt")
        try Data("earlier".utf8).write(to: marker)
        var missing = calibration
        missing.dataset = scratch.appendingPathComponent("no-such-calibration.jsonl")
        let ways: [(String, CutOptions)] = [
            ("--replace replaceme", CutOptions(method: .layers("2-3"), output: out, replace: .replaceme(missing))),
            ("--block with --dataset", CutOptions(method: .block(2), analysis: .fresh(missing), output: out)),
        ]
        for (way, options) in ways {
            var heard = 0
            XCTAssertThrowsError(try CutJob.run(source, options: options, quiet: true, progress: { _ in heard += 1 }, log: .silent), way) { error in
                XCTAssertTrue("\(error)".contains("already exists and is not empty"), "\(way): \(error)")
            }
            XCTAssertEqual(heard, 0, "\(way): no calibration pass before the refusal")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path), ["keep.txt"], way)
            XCTAssertEqual(try String(contentsOf: marker, encoding: .utf8), "earlier", way)
        }
    }
}
