// Saves a model that has no source checkpoint — LlamaModel.random's test models — as a
// Hugging Face checkpoint directory through CheckpointDirectory. config.json is LlamaConfig encoded (only the
// keys it models) and no tokenizer or generation files are written, which is all such a model has. Anything
// derived from a checkpoint on disk (cut, merge, a finetuned export) is written with CheckpointRewriter,
// which keeps the source's every config.json key and its companion files.
import Checkpoint
import Foundation
import Tensor

extension LlamaModel {
    /// All weights with their HF names, in the order transformers writes them (16-bit matrices widened to Float32).
    public func namedWeights() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = [(WeightNames.embedding, embedding.float32Copy())]
        for (i, l) in layers.enumerated() {
            out.append((WeightNames.inputNorm(layer: i), l.inputNorm))
            for p in Projection.allCases {
                out.append((WeightNames.projection(p, layer: i), l.linear(p).weight.float32Copy()))
                if let b = l.linear(p).bias { out.append((WeightNames.projectionBias(p, layer: i), b)) }
            }
            out.append((WeightNames.postAttentionNorm(layer: i), l.postAttentionNorm))
        }
        out.append((WeightNames.finalNorm, finalNorm))
        if let untiedLMHead { out.append((WeightNames.lmHead, untiedLMHead.float32Copy())) }
        return out
    }

    /// Saves to `directory` (which must not exist or be empty) as `dtype`, split into shards of at most
    /// `maxShardBytes` when given (HF's "model-00001-of-00003.safetensors" naming).
    public func save(to directory: URL, dtype: SafetensorsDType = .F32, maxShardBytes: Int? = nil) throws {
        var config = self.config
        config.torchDtype = CheckpointRewriter.torchName(dtype)
        let items = namedWeights().map { SafetensorsItem(name: $0.0, tensor: $0.1, dtype: dtype) }
        try CheckpointDirectory.write(to: directory, config: try JSONEncoder.sorted.encode(config), items: items,
                                      maxShardBytes: maxShardBytes)
    }
}

