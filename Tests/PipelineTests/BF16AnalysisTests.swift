// `prune analyze --compute bf16` chooses what Float32 chooses: on SmolLM2-135M and KJV calibration text, the best
// block of every size (both variants) is the Float32 analysis's, and the angular-distance ranking of every block size
// (all tokens) and the Block Influence ranking are Float32's up to near ties: two blocks may trade places only where
// their Float32 distances lie closer than bf16's own error on a distance (pinned). Skipped, saying why, without bf16
// compute or SmolLM2.
import Analysis
import Data
import Foundation
import Llama
import Tensor
import TestSupport
import Tokenizers
import XCTest

final class BF16AnalysisTests: XCTestCase {
    func testBF16AnalysisRanksLayersAsFloat32Does() throws {
        do { try ComputePrecision.bf16.checkAvailable() } catch { throw Fixtures.skip("bf16 compute unavailable: \(error)") }
        let dir = try Fixtures.smolLM2()
        let samples = try CalibrationSamples.select(from: Dataset(url: Fixtures.kjvValid), tokenizer: TokenizerLoader.load(directory: dir),
                                                    count: 16, context: 128)
        func analysis(_ compute: ComputePrecision) throws -> LayerAnalysis {
            let model = try LlamaModel.load(directory: dir, parallelism: Parallelism(threads: 2))
            try model.compute(in: compute)
            return LayerAnalyzer(model: model, options: AnalysisOptions(batchSize: 4))
                .analyze(samples: samples, source: AnalysisSource(model: "smollm2", dataset: nil, context: 128))
        }
        let (f32, bf16) = (try analysis(.f32), try analysis(.bf16))
        func ranking(_ v: [Double?]) -> [Int] { v.indices.filter { v[$0] != nil }.sorted { (v[$0]!, $0) < (v[$1]!, $1) } }
        var worst = 0.0, swaps = 0
        /// Every pair that bf16 orders otherwise than Float32 is a near tie in Float32.
        func assertSameUpToNearTies(_ a: [Double?], _ b: [Double?], _ what: String) {
            let order = Dictionary(uniqueKeysWithValues: ranking(b).enumerated().map { ($1, $0) })
            let ra = ranking(a)
            for (i, x) in ra.enumerated() { for y in ra[(i + 1)...] where order[x]! > order[y]! {
                swaps += 1
                XCTAssertLessThanOrEqual(abs(a[x]! - a[y]!), Tolerance.bf16AngularDistance, "\(what): \(x) and \(y) trade places")
            } }
            for (x, y) in zip(a, b) { if let x, let y { worst = max(worst, abs(x - y)) } }
        }
        for n in 1..<f32.angularDistance.allTokens.count {
            assertSameUpToNearTies(f32.angularDistance.allTokens[n], bf16.angularDistance.allTokens[n], "blocks of \(n)")
        }
        XCTAssertEqual(ranking(f32.blockInfluence), ranking(bf16.blockInfluence), "Block Influence ranking")
        assertPinned("bf16AngularDistance", worst, within: Tolerance.bf16AngularDistance, "\(swaps) near ties traded places")
        XCTAssertEqual(f32.bestBlockAllTokens.mapValues(\.layers), bf16.bestBlockAllTokens.mapValues(\.layers))
        XCTAssertEqual(f32.bestBlockLastToken.mapValues(\.layers), bf16.bestBlockLastToken.mapValues(\.layers))
        print("bf16 vs f32 analysis of SmolLM2: full loss \(f32.fullLoss) vs \(bf16.fullLoss)")
    }
}
