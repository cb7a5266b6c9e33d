// Saves a model as a Hugging Face checkpoint directory through CheckpointDirectory.
import Checkpoint
import Foundation
import Tensor

extension LlamaModel {
    /// All weights with their HF names, in the order transformers writes them.
    public func namedWeights() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = [(WeightNames.embedding, embedding)]
        for (i, l) in layers.enumerated() {
            out.append((WeightNames.inputNorm(layer: i), l.inputNorm))
            for p in Projection.allCases {
                out.append((WeightNames.projection(p, layer: i), l.linear(p).weight))
                if let b = l.linear(p).bias { out.append((WeightNames.projectionBias(p, layer: i), b)) }
            }
            out.append((WeightNames.postAttentionNorm(layer: i), l.postAttentionNorm))
        }
        out.append((WeightNames.finalNorm, finalNorm))
        if let untiedLMHead { out.append((WeightNames.lmHead, untiedLMHead)) }
        return out
    }

    /// Saves to `directory` (which must not exist) as `dtype`, split into shards of at most
    /// `maxShardBytes` when given (HF's "model-00001-of-00003.safetensors" naming).
    public func save(to directory: URL, dtype: SafetensorsDType = .F32, maxShardBytes: Int? = nil) throws {
        var config = self.config
        config.torchDtype = ["F32": "float32", "BF16": "bfloat16", "F16": "float16"][dtype.rawValue]
        let items = namedWeights().map { SafetensorsItem(name: $0.0, tensor: $0.1, dtype: dtype) }
        try CheckpointDirectory.write(to: directory, config: try JSONEncoder.sorted.encode(config), items: items,
                                      maxShardBytes: maxShardBytes)
    }
}

