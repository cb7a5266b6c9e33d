// The forward pass on the real stories260K checkpoint against transformers (float64 reference).
import Foundation
import Llama
import Tensor
import TestSupport
import XCTest

final class ReferenceForwardTests: XCTestCase {
    func testLogitsHiddenStatesAndLossMatchTransformers() throws {
        let ref = try Reference()
        let model = try LlamaModel.load(directory: ref.modelDirectory)
        let rows = ref.idRows("input_ids")
        let b = rows.count, t = rows[0].count
        let tokens = rows.flatMap { $0 }
        let out = model.forward(tokens: tokens, batch: b, length: t, captureHiddenStates: true)

        let refLogits = try ref.tensor("logits")
        XCTAssertEqual(refLogits.shape, [b, t, model.config.vocabSize])
        let logitErr = out.logits.maxAbsDifference(refLogits)
        assertPinned("forward.logits", Double(logitErr), within: Tolerance.logits)

        let refHidden = try ref.tensor("hidden_states")  // (L+1, B, T, C)
        let L = model.config.numHiddenLayers, C = model.config.hiddenSize
        XCTAssertEqual(out.hiddenStates.count, L + 1)
        let per = b * t * C
        for l in 0...L {
            var maxRef: Float = 0, maxErr: Float = 0
            for i in 0..<per {
                let r = refHidden.data[l * per + i]
                maxRef = max(maxRef, abs(r))
                maxErr = max(maxErr, abs(r - out.hiddenStates[l].data[i]))
            }
            assertPinned("forward.hidden", Double(maxErr / maxRef), within: Tolerance.hiddenState, "h_\(l)")
        }

        let targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: b, length: t)
        let loss = NextTokenLoss.tally(logits: out.logits, targets: targets, vocab: model.config.vocabSize).mean
        assertPinned("forward.loss", abs(loss - ref.double("loss")), within: Tolerance.loss)
    }
}
