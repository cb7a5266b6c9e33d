// The logit lens against a direct computation: each exit's logits from the observed hidden states, softmax and
// entropy in Double, the stream's norm; the last exit agrees with itself; the picture is the prompt's exits.
import Analysis
import Foundation
import Llama
import TestSupport
import XCTest

final class LogitLensTests: XCTestCase {
    func testEntropyTopTokenAndNormEqualADirectComputation() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let L = model.layers.count, C = model.config.hiddenSize, V = model.config.vocabSize
        let ids: [Int32] = [1, 403, 407, 261, 378, 30, 90, 200]
        let lens = LogitLens.measure(model: model, samples: [ids, Array(ids.prefix(3))], prompt: ids, pieces: { $0.map { "\($0)" } })
        XCTAssertEqual(lens.positions, 11)
        XCTAssertEqual(lens.agreement.count, L)
        XCTAssertEqual(lens.agreement[L - 1], 1)
        XCTAssertEqual(lens.hiddenNorm.count, L + 1)
        // Reference: the picture's prompt, exit by exit.
        var states: [[Float]] = []
        _ = model.forward(tokens: ids, batch: 1, length: ids.count) { _, h in states.append(Array(UnsafeBufferPointer(start: h, count: ids.count * C))) }
        XCTAssertEqual(states.count, L + 1)
        let picture = try XCTUnwrap(lens.picture)
        var worstEntropy = 0.0, worstProbability = 0.0, entropySum = [Double](repeating: 0, count: L)
        for l in 1...L {
            let logits = UnsafeMutablePointer<Float>.allocate(capacity: ids.count * V)
            defer { logits.deallocate() }
            states[l].withUnsafeBufferPointer { model.logits(fromHidden: $0.baseAddress!, rows: ids.count, into: logits) }
            for t in 0..<ids.count {
                let z = (0..<V).map { Double(logits[t * V + $0]) }
                let m = z.max()!, sum = z.reduce(0) { $0 + exp($1 - m) }
                let p = z.map { exp($0 - m) / sum }
                let entropy = -p.reduce(0) { $0 + ($1 > 0 ? $1 * log($1) : 0) }
                let top = z.indices.max { z[$0] < z[$1] || (z[$0] == z[$1] && $0 > $1) }!
                XCTAssertEqual(picture.topIDs[l - 1][t], top, "exit \(l) position \(t)")
                worstProbability = max(worstProbability, abs(picture.probability[l - 1][t] - p[top]))
                entropySum[l - 1] += entropy
            }
            let norm = (0..<ids.count).map { t in sqrt((0..<C).reduce(0.0) { $0 + Double(states[l][t * C + $1] * states[l][t * C + $1]) }) }
            XCTAssertEqual(LogitLens.measure(model: model, samples: [ids], prompt: nil, pieces: { _ in [] }).hiddenNorm[l],
                           norm.reduce(0, +) / Double(ids.count), accuracy: 1e-4 * norm.max()!)
        }
        let alone = LogitLens.measure(model: model, samples: [ids], prompt: nil, pieces: { _ in [] })
        XCTAssertNil(alone.picture)
        for l in 0..<L { worstEntropy = max(worstEntropy, abs(alone.entropy[l] - entropySum[l] / Double(ids.count))) }
        print(String(format: "logit lens vs Double: entropy %.2e, top probability %.2e", worstEntropy, worstProbability))
        XCTAssertLessThan(worstEntropy, 1e-5)   // measured 3e-6 (float logits, lane exp)
        XCTAssertLessThan(worstProbability, 1e-12)   // the same float logits in Double
    }
}
