// Writes a Hugging Face checkpoint directory from nothing but a config and tensors (config.json +
// model.safetensors, or shards with model.safetensors.index.json): the random-initialised checkpoints of
// benchmarks and tests. A checkpoint made from another one (cut, merge, finetune export) goes through
// CheckpointRewriter instead, which keeps every config.json key and the companion files. The directory is
// built under a temporary name and renamed at the end (AtomicDirectory).
import Foundation
import Support

/// Writing whole checkpoint directories atomically.
public enum CheckpointDirectory {
    /// Writes config.json and the tensors (sharded when `maxShardBytes` is given) into a temporary sibling of
    /// `directory`, then renames it into place.
    public static func write(to directory: URL, config: Data, items: [SafetensorsItem], maxShardBytes: Int? = nil) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: directory.path) {
            let contents = (try? fm.contentsOfDirectory(atPath: directory.path)) ?? ["?"]
            guard contents.isEmpty else { throw PruneError(file: directory, "already exists and is not empty") }
        }
        // An empty directory there is replaced (AtomicDirectory: registered with Interruption, so Ctrl-C during a
        // 16 GB write leaves nothing).
        try AtomicDirectory.write(directory, replacing: true) { tmp in
            try AtomicFile.write(config, to: tmp.appendingPathComponent("config.json"))
            let total = items.reduce(0) { $0 + $1.byteCount }
            if let maxShardBytes, total > maxShardBytes {
                var shards: [[SafetensorsItem]] = [[]]
                var size = 0
                for item in items {
                    if size > 0 && size + item.byteCount > maxShardBytes { shards.append([]); size = 0 }
                    shards[shards.count - 1].append(item)
                    size += item.byteCount
                }
                var weightMap: [String: String] = [:]
                for (i, shard) in shards.enumerated() {
                    let name = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
                    try SafetensorsWriter.write(shard, to: tmp.appendingPathComponent(name))
                    for item in shard { weightMap[item.name] = name }
                }
                let index: [String: Any] = ["metadata": ["total_size": total], "weight_map": weightMap]
                try AtomicFile.write(try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys]),
                                     to: tmp.appendingPathComponent("model.safetensors.index.json"))
            } else {
                try SafetensorsWriter.write(items, to: tmp.appendingPathComponent("model.safetensors"))
            }
        }
    }
}
