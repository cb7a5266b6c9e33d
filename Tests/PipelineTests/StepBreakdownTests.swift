// The step breakdown (`prune bench --breakdown`): a profile changes no result, its parts cover the step without
// counting anything twice, and the FLOPs it counts are the GEMMs' 2·N·O·I, the adapters' and attention's.
// Dimension glossary: B batch, T tokens, N = B·T rows, O out features, I in features, R LoRA rank, L layers.
import Bench
import Checkpoint
import Foundation
import Llama
import Tensor
import TestSupport
import Training
import XCTest

final class StepBreakdownTests: XCTestCase {
    /// L = 2, C = 24, F = 40, H = 4, G = 2, D = 6: odd enough that a wrong dimension in a count shows.
    static let tiny = LlamaConfig(hiddenSize: 24, intermediateSize: 40, numHiddenLayers: 2, numAttentionHeads: 4,
                                  numKeyValueHeads: 2, vocabSize: 50, tieWordEmbeddings: true)

    func testAProfiledForwardGivesBitIdenticalLogits() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let tokens: [Int32] = (0..<2 * 40).map { Int32(($0 * 37) % model.config.vocabSize) }
        let plain = model.forward(tokens: tokens, batch: 2, length: 40).logits
        model.profile = StepProfile(threads: model.parallelism.threads)
        let profiled = model.forward(tokens: tokens, batch: 2, length: 40).logits
        model.profile = nil
        XCTAssertEqual(Array(UnsafeBufferPointer(start: plain.data, count: plain.count)),
                       Array(UnsafeBufferPointer(start: profiled.data, count: profiled.count)))
    }

    func testThePartsCoverMostOfAStepAndNeverMoreThanIt() throws {
        // The SmolLM2 shape, narrowed to two layers and a small vocabulary.
        let config = LlamaConfig(hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 2, numAttentionHeads: 9,
                                 numKeyValueHeads: 3, headDim: 64, rmsNormEps: 1e-5, ropeTheta: 100000, vocabSize: 2048,
                                 tieWordEmbeddings: true, maxPositionEmbeddings: 8192)
        let model = LlamaModel.random(config: config, seed: 7, parallelism: Parallelism(threads: 2))
        let limits = StepBreakdown.Limits(sgemmShape: "-", sgemmGFLOPs: 1, peakGFLOPs: nil, peakNote: "")
        for mode in [StepBreakdown.Mode.train, .forward] {
            let r = try StepBreakdown.run(model: model, name: "smollm2-2-layers", mode: mode, batch: 2, length: 64, steps: 2, limits: limits)
            let parts = r.parts.reduce(0) { $0 + $1.milliseconds }
            print(String(format: "step breakdown, %@: parts %.1f of %.1f ms", mode.rawValue, parts, r.stepMilliseconds))
            XCTAssertLessThanOrEqual(parts, r.stepMilliseconds * 1.0001, "\(mode)")
            XCTAssertGreaterThanOrEqual(parts, 0.8 * r.stepMilliseconds, "\(mode): parts cover \(parts) of \(r.stepMilliseconds) ms")
            XCTAssertEqual(r.summary.first?.part, "all projection GEMMs")
            XCTAssert(r.parts.contains { $0.part == "q forward" && ($0.gflopsPerSecond ?? 0) > 0 }, "\(mode)")
            if mode == .train {
                XCTAssert(r.parts.contains { $0.part == "LoRA backward" })
                XCTAssert(r.parts.contains { $0.part == "optimizer (zero + AdamW)" })
            }
        }
        XCTAssertNil(model.profile, "the breakdown takes its profile off the model")
        XCTAssert(model.layers.allSatisfy { $0.q.lora == nil }, "and its adapters")
    }

    func testTheCountedFLOPsAreTheGEMMsAdaptersAndCausalAttention() throws {
        let c = Self.tiny, b = 2, t = 5, n = b * t, R = 4, L = c.numHiddenLayers
        let model = LlamaModel.random(config: c, seed: 3, parallelism: .serial)
        let profile = StepProfile(threads: 1)
        model.profile = profile
        let tokens: [Int32] = (0..<n).map { Int32($0 % c.vocabSize) }
        _ = model.forward(tokens: tokens, batch: b, length: t)
        func gemm(_ p: Projection) -> Double {
            let w = model.layers[0].linear(p)
            return 2 * Double(n * w.outFeatures * w.inFeatures)
        }
        for p in Projection.allCases {
            XCTAssertEqual(profile.totals[.projection(p, .forward)]?.flops, Double(L) * gemm(p), "\(p)")
        }
        // Per head and sequence, T(T+1)/2 (query, key) pairs of D multiply-adds, in two products.
        let pairs = Double(t * (t + 1) / 2)
        let attention = 2 * 2 * Double(b * c.numAttentionHeads * c.headDim) * pairs
        XCTAssertEqual(profile.totals[.attention(.forward)]?.flops, Double(L) * attention)
        XCTAssertEqual(profile.totals[.head]?.flops, 2 * Double(n * c.vocabSize * c.hiddenSize))

        // A LoRA step: the adapters' products apart from the base GEMMs; layer 0 sends no gradient below it, so its
        // q, k, v backward has no input-gradient GEMM (and its adapters no dx).
        let set = try TrainableSet(model: model, configuration: .lora(LoRASettings(rank: R, alpha: 8, seed: 1)))
        let pass = LlamaTrainingPass(model: model, batch: b, length: t)
        profile.reset()
        _ = pass.run(tokens: tokens, targets: NextTokenLoss.shiftedTargets(tokens: tokens, batch: b, length: t))
        var loraForward = 0.0, loraBackward = 0.0
        for p in Projection.allCases {
            let w = model.layers[0].linear(p), I = Double(w.inFeatures), O = Double(w.outFeatures)
            XCTAssertEqual(profile.totals[.projection(p, .forward)]?.flops, Double(L) * gemm(p), "\(p)")
            let withoutInputGradient = [.q, .k, .v].contains(p) ? 1 : 0
            XCTAssertEqual(profile.totals[.projection(p, .backward)]?.flops, Double(L - withoutInputGradient) * gemm(p), "\(p)")
            loraForward += Double(L) * 2 * Double(n * R) * (I + O)
            // dh, dB, dA always; dx where the input gradient is wanted.
            loraBackward += Double(L) * 2 * Double(n * R) * (2 * O + I) + Double(L - withoutInputGradient) * 2 * Double(n * R) * I
        }
        XCTAssertEqual(profile.totals[.lora(.forward)]?.flops, loraForward)
        XCTAssertEqual(profile.totals[.lora(.backward)]?.flops, loraBackward)
        XCTAssertEqual(profile.totals[.attention(.backward)]?.flops, Double(L) * attention * 5 / 2)
        // Head: logits, their input gradient; the tied head's weight does not train under LoRA. The last position
        // of each sequence has no target.
        XCTAssertEqual(profile.totals[.head]?.flops, 2 * 2 * Double((n - b) * c.vocabSize * c.hiddenSize))
        model.profile = nil
        withExtendedLifetime(set) {}
    }
}
