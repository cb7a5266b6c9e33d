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
    /// The dtype a random checkpoint is written in (F32, BF16 or F16; streamed tensor by tensor).
    public var dtype: SafetensorsDType = .F32
    /// Shard size of a random checkpoint (nil: one model.safetensors).
    public var maxShardBytes: Int? = nil

    public init(name: String, directory: URL?, config: LlamaConfig?, dtype: SafetensorsDType = .F32, maxShardBytes: Int? = nil) {
        self.name = name
        self.directory = directory
        self.config = config
        self.dtype = dtype
        self.maxShardBytes = maxShardBytes
    }

    /// SmolLM2-135M: 30 layers, hidden 576, 9/3 heads, head dim 64, ffn 1536, vocab 49152, tied.
    public static let smolLM2 = BenchmarkShape(name: "smollm2-135m-shape", directory: nil, config: LlamaConfig(
        hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 30, numAttentionHeads: 9, numKeyValueHeads: 3,
        headDim: 64, rmsNormEps: 1e-5, ropeTheta: 100000, vocabSize: 49152, tieWordEmbeddings: true, maxPositionEmbeddings: 8192))

    /// stories110M (llama2.c): 12 layers, hidden 768, 12 heads, ffn 2048, vocab 32000, untied.
    public static let stories110M = BenchmarkShape(name: "stories110m-shape", directory: nil, config: LlamaConfig(
        hiddenSize: 768, intermediateSize: 2048, numHiddenLayers: 12, numAttentionHeads: 12, vocabSize: 32000,
        tieWordEmbeddings: false, maxPositionEmbeddings: 1024))

    /// Llama-3.2-1B: 16 layers, hidden 2048, 32/8 heads, head dim 64, ffn 8192, vocab 128256, tied, RoPE llama3
    /// (factor 32); written in bf16 as 4 shards of at most 700 MB (2.5 GB in all).
    public static let llama32_1B = BenchmarkShape(name: "llama3.2-1b-shape", directory: nil, config: LlamaConfig(
        hiddenSize: 2048, intermediateSize: 8192, numHiddenLayers: 16, numAttentionHeads: 32, numKeyValueHeads: 8,
        headDim: 64, rmsNormEps: 1e-5, ropeTheta: 500000,
        ropeScaling: RopeScaling(ropeType: "llama3", factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192),
        vocabSize: 128256, tieWordEmbeddings: true, maxPositionEmbeddings: 131072), dtype: .BF16, maxShardBytes: 700_000_000)

    /// Llama-3.1-8B: 32 layers, hidden 4096, 32/8 heads, head dim 128, ffn 14336, vocab 128256, untied, RoPE llama3
    /// (factor 8); written in bf16 as shards of at most 1 GB (17 shards, 16.1 GB in all).
    public static let llama31_8B = BenchmarkShape(name: "llama3.1-8b-shape", directory: nil, config: LlamaConfig(
        hiddenSize: 4096, intermediateSize: 14336, numHiddenLayers: 32, numAttentionHeads: 32, numKeyValueHeads: 8,
        headDim: 128, rmsNormEps: 1e-5, ropeTheta: 500000,
        ropeScaling: RopeScaling(ropeType: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192),
        vocabSize: 128256, tieWordEmbeddings: false, maxPositionEmbeddings: 131072), dtype: .BF16, maxShardBytes: 1_000_000_000)

    public static func checkpoint(_ dir: URL) -> BenchmarkShape {
        BenchmarkShape(name: dir.lastPathComponent, directory: dir, config: nil)
    }

    /// The checkpoint directory, writing the random one into `cache` the first time.
    public func materialize(cache: URL) throws -> URL {
        if let directory { return directory }
        let dir = cache.appendingPathComponent(name)
        let fm = FileManager.default
        if fm.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path)
            || fm.fileExists(atPath: dir.appendingPathComponent("model.safetensors.index.json").path) { return dir }
        try fm.createDirectory(at: cache, withIntermediateDirectories: true)
        try LlamaModel.writeRandomCheckpoint(config: config!, to: dir, dtype: dtype, maxShardBytes: maxShardBytes, seed: 7)
        return dir
    }
}
