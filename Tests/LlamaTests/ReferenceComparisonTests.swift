// KL divergence from the original and top-1 agreement, against a direct float64 computation by transformers
// on the same tokens (when the dev venv is present) and against their definitions.
import Foundation
@testable import Llama
import Support
import Surgery
import Tensor
import TestSupport
import XCTest

final class ReferenceComparisonTests: XCTestCase {
    func testIdenticalModelsHaveZeroKLAndFullAgreement() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let windows = Evaluation.windows([[1, 403, 407, 261, 378, 300, 290, 280, 270]], context: 9, stride: 9)
        let c = ReferenceComparison.compare(model: model, reference: model, windows: windows)
        XCTAssertEqual(c.meanKL, 0, accuracy: 1e-9)
        XCTAssertEqual(c.top1Agreement, 1)
        XCTAssertEqual(c.positions, 8)
    }

    func testOneRowMatchesTheDefinition() {
        let ref: [Float] = [2, 0, -1, 0.5], model: [Float] = [0, 1, -1, 0.5]
        let p = ref.map { exp(Double($0)) }, q = model.map { exp(Double($0)) }
        let zp = p.reduce(0, +), zq = q.reduce(0, +)
        let expected = zip(p, q).reduce(0.0) { $0 + $1.0 / zp * log(($1.0 / zp) / ($1.1 / zq)) }
        let (kl, same) = ReferenceComparison.divergence(model, reference: ref, vocab: 4)
        XCTAssertEqual(kl, expected, accuracy: 1e-12)
        XCTAssertFalse(same)
    }

    func testACutModelAgainstTheOriginalEqualsTransformers() throws {
        guard let python = PythonVenv.python else { throw XCTSkip("no Python with torch/transformers (~/.cache/prune-dev/venv): skipping the transformers cross-check") }
        let dir = try Fixtures.temporaryDirectory("kl")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cut = dir.appendingPathComponent("cut")
        _ = try LayerCutter(model: Fixtures.stories260K).cut(dropping: try LayerSelection(parsing: "2-3", option: "--layers"), to: cut)
        let ref = try Reference()
        let rows = ref.idRows("input_ids")
        let windows = rows.map { EvaluationWindow(tokens: $0, skip: 0) }
        let ours = ReferenceComparison.compare(model: try LlamaModel.load(directory: cut),
                                               reference: try LlamaModel.load(directory: Fixtures.stories260K), windows: windows)
        let script = """
        import json, sys, torch
        from transformers import LlamaForCausalLM
        ids = torch.tensor(json.loads(sys.argv[3]))
        full = LlamaForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.float64).eval()
        cut = LlamaForCausalLM.from_pretrained(sys.argv[2], torch_dtype=torch.float64).eval()
        with torch.no_grad():
            lp = torch.log_softmax(full(ids).logits[:, :-1], -1)
            lq = torch.log_softmax(cut(ids).logits[:, :-1], -1)
        kl = (lp.exp() * (lp - lq)).sum(-1)
        agree = (lp.argmax(-1) == lq.argmax(-1)).double()
        print(json.dumps({"kl": kl.mean().item(), "agree": agree.mean().item(), "n": kl.numel()}))
        """
        let out = try PythonVenv.run(python, script: script, [Fixtures.stories260K.path, cut.path, "\(rows)"])
        let theirs = try JSONSerialization.jsonObject(with: Data(out.split(separator: "\n").last!.utf8)) as! [String: Any]
        let kl = theirs["kl"] as! Double, agree = theirs["agree"] as! Double
        print("KL(original ‖ cut 2-3): ours \(ours.meanKL), transformers \(kl); top-1 agreement ours \(ours.top1Agreement), transformers \(agree)")
        XCTAssertEqual(ours.positions, theirs["n"] as? Int)
        // Measured relative: 1.9e-7 (AVX-512, scalar), 9.2e-8 (AVX2) with blockwise attention; 3.5e-8, 4.3e-8, 9.8e-8
        // with the softmax attention before it: float32 rounding noise of two forwards, whichever the kernels.
        XCTAssertEqual(ours.meanKL, kl, accuracy: 6e-7 * max(1, kl))
        XCTAssertEqual(ours.top1Agreement, agree, accuracy: 1e-9)
    }
}
