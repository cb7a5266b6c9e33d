// Model shapes the benchmark runs: the real default checkpoint and random-initialised checkpoints of
// realistic shapes (written once to a cache folder so that PyTorch can load the very same files).
import Checkpoint
import Foundation
import Llama

/// A model to benchmark.
public struct BenchmarkShape: Sendable {
    public let name: String
    /// A real checkpoint directory, or nil for a random one made from `config`.
    public let directory: URL?
    public let config: LlamaConfig?

    /// SmolLM2-135M: 30 layers, hidden 576, 9/3 heads, head dim 64, ffn 1536, vocab 49152, tied.
    public static let smolLM2 = BenchmarkShape(name: "smollm2-135m-shape", directory: nil, config: LlamaConfig(
        hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 30, numAttentionHeads: 9, numKeyValueHeads: 3,
        headDim: 64, rmsNormEps: 1e-5, ropeTheta: 100000, vocabSize: 49152, tieWordEmbeddings: true, maxPositionEmbeddings: 8192))

    /// stories110M (llama2.c): 12 layers, hidden 768, 12 heads, ffn 2048, vocab 32000, untied.
    public static let stories110M = BenchmarkShape(name: "stories110m-shape", directory: nil, config: LlamaConfig(
        hiddenSize: 768, intermediateSize: 2048, numHiddenLayers: 12, numAttentionHeads: 12, vocabSize: 32000,
        tieWordEmbeddings: false, maxPositionEmbeddings: 1024))

    public static func checkpoint(_ dir: URL) -> BenchmarkShape {
        BenchmarkShape(name: dir.lastPathComponent, directory: dir, config: nil)
    }

    /// The checkpoint directory, writing the random one into `cache` the first time.
    public func materialize(cache: URL) throws -> URL {
        if let directory { return directory }
        let dir = cache.appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) { return dir }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        try LlamaModel.random(config: config!, seed: 7).save(to: dir)
        return dir
    }
}
