// The tensors of a checkpoint directory: one model.safetensors, or shards listed by
// model.safetensors.index.json ({"weight_map": {name: file}}).
import Foundation
import Support
import Tensor

/// Every tensor of a checkpoint directory, single-file or sharded.
public final class CheckpointTensors {
    public let directory: URL
    /// Shard files in index order (one for an unsharded checkpoint).
    public let files: [SafetensorsFile]
    /// Which file holds each tensor.
    private let fileOfName: [String: Int]
    /// Whether the checkpoint came with an index file.
    public let isSharded: Bool

    public init(directory: URL) throws {
        self.directory = directory
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        let fm = FileManager.default
        if fm.fileExists(atPath: index.path) {
            isSharded = true
            guard let data = fm.contents(atPath: index.path),
                  let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw PruneError(file: index, "not valid JSON")
            }
            guard let map = obj["weight_map"] as? [String: String] else { throw PruneError(file: index, "no \"weight_map\" object") }
            var shardNames: [String] = []
            var shardIndex: [String: Int] = [:]
            var where_: [String: Int] = [:]
            for (name, shard) in map.sorted(by: { $0.key < $1.key }) {
                guard !shard.contains("/"), !shard.isEmpty, shard != ".", shard != ".." else {
                    throw PruneError(file: index, "shard name \"\(shard)\" must be a file in the same directory")
                }
                let i = shardIndex[shard] ?? shardNames.count
                if i == shardNames.count { shardIndex[shard] = i; shardNames.append(shard) }
                where_[name] = i
            }
            files = try shardNames.map { try SafetensorsFile(url: directory.appendingPathComponent($0)) }
            for (name, i) in where_ where files[i].entryByName[name] == nil {
                throw PruneError(file: files[i].url, "index says it holds \"\(name)\" but it does not")
            }
            fileOfName = where_
        } else if fm.fileExists(atPath: single.path) {
            isSharded = false
            files = [try SafetensorsFile(url: single)]
            fileOfName = Dictionary(uniqueKeysWithValues: files[0].names.map { ($0, 0) })
        } else {
            throw PruneError(file: directory, "no model.safetensors or model.safetensors.index.json")
        }
    }

    /// All tensor names, sorted.
    public var names: [String] { fileOfName.keys.sorted() }

    public func contains(_ name: String) -> Bool { fileOfName[name] != nil }

    /// The file and header entry of a tensor.
    public func entry(_ name: String) throws -> (file: SafetensorsFile, entry: SafetensorsEntry) {
        guard let i = fileOfName[name], let entry = files[i].entryByName[name] else {
            throw PruneError(file: directory, "checkpoint has no tensor \"\(name)\"")
        }
        return (files[i], entry)
    }

    /// A tensor as Float32, checked against the expected shape when given.
    public func tensor(_ name: String, shape: [Int]? = nil) throws -> Tensor {
        let (file, e) = try entry(name)
        if let shape, shape != e.shape {
            throw PruneError(file: file.url, "tensor \"\(name)\" has shape \(e.shape), config.json implies \(shape)")
        }
        return try file.tensor(name)
    }

    /// A weight matrix, checked against the expected shape: BF16 and F16 entries stay where they lie in the mapped
    /// file (no copy; the weight keeps the file open) when `keepsStoredDType`, everything else becomes Float32.
    public func weight(_ name: String, shape: [Int], keepsStoredDType: Bool) throws -> Weight {
        let (file, e) = try entry(name)
        guard keepsStoredDType, e.dtype == .BF16 || e.dtype == .F16 else { return Weight(try tensor(name, shape: shape)) }
        if shape != e.shape {
            throw PruneError(file: file.url, "tensor \"\(name)\" has shape \(e.shape), config.json implies \(shape)")
        }
        let raw = try file.rawBytes(name)
        // An odd data offset (a malformed but readable file) cannot be read as UInt16 in place: widen it instead.
        guard let base = raw.baseAddress, Int(bitPattern: base) % 2 == 0, e.elementCount > 0 else {
            return Weight(try tensor(name, shape: shape))
        }
        return Weight(halves: base.assumingMemoryBound(to: UInt16.self), element: e.dtype == .BF16 ? .bf16 : .f16,
                      shape: shape, owner: file)
    }

}
