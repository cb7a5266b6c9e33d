// Fuzz target: model.safetensors.index.json beside one small valid shard, through CheckpointTensors and
// the whole CheckpointValidation (with a fixed tiny config.json).
import Checkpoint
import Foundation
import Support
import Tensor

/// A directory with config.json and model-00001-of-00001.safetensors for a 1-layer model.
let checkpoint: URL = {
    let dir = FuzzInput.scratch.appendingPathComponent("sharded")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let config = LlamaConfig(hiddenSize: 4, intermediateSize: 6, numHiddenLayers: 1, numAttentionHeads: 2, vocabSize: 8,
                             tieWordEmbeddings: true)
    try? JSONEncoder().encode(config).write(to: dir.appendingPathComponent("config.json"))
    let items = CheckpointValidation.expectedTensors(config).map { SafetensorsItem(name: $0.name, tensor: Tensor(zeros: $0.shape), dtype: .F32) }
    try? SafetensorsWriter.write(items, to: dir.appendingPathComponent("model-00001-of-00001.safetensors"))
    return dir
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let index = checkpoint.appendingPathComponent("model.safetensors.index.json")
    FileManager.default.createFile(atPath: index.path, contents: Data(FuzzInput.bytes(data, size)))
    _ = try? CheckpointValidation.validate(checkpoint)
    return 0
}
