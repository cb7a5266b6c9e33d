// Which tensors a cut checkpoint holds and in which file: every tensor of the source except the dropped
// layers', layer tensors renumbered contiguously (model.layers.{old}.rest → model.layers.{new}.rest),
// bytes copied as they are unless a dtype conversion is asked for. A sharded source gives a sharded
// result whose shards are no larger than the source's largest (after conversion).
import Checkpoint
import Foundation
import Support

/// One tensor of the cut checkpoint.
struct PlannedTensor {
    let file: SafetensorsFile
    let entry: SafetensorsEntry
    /// Its name in the cut checkpoint.
    let name: String
    /// Its dtype in the cut checkpoint.
    let dtype: SafetensorsDType

    var outputBytes: Int { entry.elementCount * dtype.size }

    /// The item to write: the original bytes, or the values converted through Float32.
    func item() throws -> SafetensorsItem {
        if dtype == entry.dtype {
            return SafetensorsItem(name: name, dtype: dtype, shape: entry.shape, bytes: try file.rawBytes(entry.name))
        }
        return SafetensorsItem(name: name, tensor: try file.tensor(entry.name), dtype: dtype)
    }
}

/// The tensors and files of a cut checkpoint.
struct CutTensorPlan {
    /// Files in order, each with its tensors in order; one file named model.safetensors when unsharded.
    let shards: [(name: String, tensors: [PlannedTensor])]
    let sharded: Bool
    /// Elements of every tensor of the source (a tied lm_head is not stored, so it is not counted twice).
    let parametersBefore: Int
    /// Elements of the tensors kept.
    let parametersAfter: Int
    /// `__metadata__` of the source files merged (the first file's value wins on a clash).
    let metadata: [String: String]

    /// Plans the cut of `store` (a checkpoint of `layerCount` layers) keeping `kept`, converting floating
    /// tensors to `dtype` when given.
    init(store: CheckpointTensors, layerCount L: Int, kept: [Int], dtype: SafetensorsDType?) throws {
        let newIndex = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1, $0) })
        var planned: [PlannedTensor] = []
        var before = 0, after = 0
        var largestSourceFile = 0
        var metadata: [String: String] = [:]
        for file in store.files {
            var fileBytes = 0
            metadata.merge(file.metadata) { first, _ in first }
            // Only what the index assigns to this file (a shard may carry stale extra entries).
            for entry in file.entries where (try? store.entry(entry.name))?.file === file {
                let outDtype = dtype.map { entry.dtype.isFloatingSupported ? $0 : entry.dtype } ?? entry.dtype
                fileBytes += entry.elementCount * outDtype.size
                before += entry.elementCount
                var name = entry.name
                if let (layer, rest) = WeightNames.splitLayer(entry.name) {
                    guard layer < L else {
                        throw PruneError(file: file.url, "tensor \"\(entry.name)\" belongs to layer \(layer) but config.json says num_hidden_layers = \(L)")
                    }
                    guard let renumbered = newIndex[layer] else { continue }
                    name = WeightNames.layerPrefix(renumbered) + rest
                }
                after += entry.elementCount
                planned.append(PlannedTensor(file: file, entry: entry, name: name, dtype: outDtype))
            }
            largestSourceFile = max(largestSourceFile, fileBytes)
        }
        parametersBefore = before
        parametersAfter = after
        self.metadata = metadata
        sharded = store.isSharded
        guard sharded else {
            shards = [("model.safetensors", planned)]
            return
        }
        var groups: [[PlannedTensor]] = [[]]
        var size = 0
        for t in planned {
            if size > 0 && size + t.outputBytes > largestSourceFile {
                groups.append([])
                size = 0
            }
            groups[groups.count - 1].append(t)
            size += t.outputBytes
        }
        shards = groups.enumerated().map { i, tensors in
            (String(format: "model-%05d-of-%05d.safetensors", i + 1, groups.count), tensors)
        }
    }

    /// Bytes of all tensors as written.
    var totalBytes: Int { shards.reduce(0) { $0 + $1.tensors.reduce(0) { $0 + $1.outputBytes } } }

    /// Output dtypes by element count, the most common first.
    var dtypes: [SafetensorsDType] {
        var count: [SafetensorsDType: Int] = [:]
        for shard in shards { for t in shard.tensors { count[t.dtype, default: 0] += t.entry.elementCount } }
        return count.keys.sorted { (count[$0]!, $1.rawValue) > (count[$1]!, $0.rawValue) }
    }

    /// Writes the safetensors files, and the index when sharded, into `directory`. `sourceIndex` is the
    /// source's index object, whose keys besides the weight map are kept (total_size and
    /// total_parameters updated). Each file's tensors are materialised only while it is written.
    func write(into directory: URL, sourceIndex: [String: Any]?) throws {
        var weightMap: [String: String] = [:]
        for shard in shards {
            try SafetensorsWriter.write(try shard.tensors.map { try $0.item() }, metadata: metadata,
                                        to: directory.appendingPathComponent(shard.name))
            for t in shard.tensors { weightMap[t.name] = shard.name }
        }
        guard sharded else { return }
        var index = sourceIndex ?? [:]
        var indexMetadata = index["metadata"] as? [String: Any] ?? [:]
        indexMetadata["total_size"] = NSNumber(value: totalBytes)
        if indexMetadata["total_parameters"] != nil { indexMetadata["total_parameters"] = NSNumber(value: parametersAfter) }
        index["metadata"] = indexMetadata
        index["weight_map"] = weightMap
        try AtomicFile.write(try ConfigJSON.data(index), to: directory.appendingPathComponent("model.safetensors.index.json"))
    }
}
