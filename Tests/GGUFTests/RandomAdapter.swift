// A PEFT LoRA adapter of random A and B (B non-zero, so that it changes the model) for a checkpoint, written as PEFT
// writes one.
import Checkpoint
import Foundation
import Support
import Tensor

enum RandomAdapter {
    /// Writes an adapter of every projection of every layer of the checkpoint in `model` to `directory`.
    static func write(for model: URL, to directory: URL, rank: Int, alpha: Float, rsLoRA: Bool = false, seed: UInt64 = 7) throws {
        let config = try LlamaConfig.load(model.appendingPathComponent("config.json"))
        var rng = SeededGenerator(seed: seed)
        func random(_ shape: [Int], scale: Float) -> Tensor {
            Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -scale...scale, using: &rng) })
        }
        var weights: [LoRAWeights] = []
        for layer in 0..<config.numHiddenLayers {
            for p in Projection.allCases {
                let (out, inp) = PEFTAdapter.shape(p, config)
                weights.append(LoRAWeights(layer: layer, projection: p, a: random([rank, inp], scale: 0.1), b: random([out, rank], scale: 0.1)))
            }
        }
        let adapter = PEFTAdapter(config: PEFTAdapterConfig(rank: rank, alpha: alpha, useRSLoRA: rsLoRA, baseModel: model.path),
                                  weights: weights)
        try adapter.write(to: directory)
    }
}
