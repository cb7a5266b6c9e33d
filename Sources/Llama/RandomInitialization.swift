// Random-initialised models of a given shape (benchmarks, tests): weights ~ N(0, 0.02²) as transformers'
// initializer_range, norms at 1.
import Checkpoint
import Foundation
import Support
import Tensor

extension LlamaModel {
    /// A model of `config`'s shape with seeded random weights.
    public static func random(config c: LlamaConfig, seed: UInt64 = 0, parallelism: Parallelism = .allCores) -> LlamaModel {
        var rng = SeededGenerator(seed: seed)
        func normal(_ shape: [Int], std: Float = 0.02) -> Tensor {
            let t = Tensor(zeros: shape)
            var i = 0
            while i < t.count {
                // Box–Muller: two normals per pair of uniforms.
                let u1 = Double.random(in: Double.ulpOfOne..<1, using: &rng), u2 = Double.random(in: 0..<1, using: &rng)
                let r = (-2 * log(u1)).squareRoot()
                t[i] = Float(r * cos(2 * .pi * u2)) * std
                if i + 1 < t.count { t[i + 1] = Float(r * sin(2 * .pi * u2)) * std }
                i += 2
            }
            return t
        }
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        func lin(_ o: Int, _ i: Int, _ bias: Bool) -> Linear { Linear(weight: normal([o, i]), bias: bias ? normal([o]) : nil) }
        let layers = (0..<c.numHiddenLayers).map { _ in
            LlamaLayer(q: lin(H * D, C, c.attentionBias), k: lin(G * D, C, c.attentionBias), v: lin(G * D, C, c.attentionBias),
                       o: lin(C, H * D, c.attentionBias), gate: lin(F, C, c.mlpBias), up: lin(F, C, c.mlpBias),
                       down: lin(C, F, c.mlpBias), inputNorm: Tensor(shape: [C], repeating: 1),
                       postAttentionNorm: Tensor(shape: [C], repeating: 1))
        }
        return LlamaModel(config: c, embedding: normal([c.vocabSize, C]), layers: layers,
                          finalNorm: Tensor(shape: [C], repeating: 1),
                          lmHead: c.tieWordEmbeddings ? nil : normal([c.vocabSize, C]), parallelism: parallelism)
    }
}
