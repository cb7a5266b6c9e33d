// Writes a new checkpoint directory from an existing one, the way every Llama runtime expects to find it:
// the tensors a plan names (copied as bytes, renamed, or replaced by new Float32 values converted to the
// output dtype), config.json with every key of the source (the caller's edits applied), the companion
// files (tokenizer, generation config, chat template, …) copied, sharded like the source (no shard larger
// than the source's largest) and in the source's dtypes unless a conversion is asked for. The directory is
// built under a temporary name and renamed at the end (CheckpointDestination); inputs are never written.
// Used by `prune cut` (layers dropped and renumbered) and `prune merge` (LoRA folded into the weights).
import Foundation
import Support
import Tensor

/// One tensor of a rewritten checkpoint.
public struct RewrittenTensor {
    /// Its name in the output.
    public let name: String
    /// The source tensor it comes from: copied, or the one whose shape and dtype the new values take.
    public let source: String
    /// New values (the source's shape) computed when the tensor is written; nil copies the source.
    public let values: (() throws -> Tensor)?

    public init(name: String, source: String, values: (() throws -> Tensor)? = nil) {
        self.name = name
        self.source = source
        self.values = values
    }

    /// The source tensor under its own name or `name`.
    public static func copy(_ source: String, as name: String? = nil) -> RewrittenTensor {
        RewrittenTensor(name: name ?? source, source: source)
    }

    /// The source tensor's slot (name, shape, dtype) filled with `values`.
    public static func replaced(_ source: String, by values: @escaping () throws -> Tensor) -> RewrittenTensor {
        RewrittenTensor(name: source, source: source, values: values)
    }
}

/// What a rewrite wrote.
public struct CheckpointRewriteResult {
    /// The safetensors files written, then the index when sharded.
    public var weightFiles: [String]
    /// Dtypes of the written tensors by element count, the most common first.
    public var dtypes: [SafetensorsDType]
    /// Companion files copied unchanged, sorted.
    public var copiedFiles: [String]
    /// Entries of the source directory not carried over (other weight formats, subdirectories).
    public var leftBehind: [String]
    /// Elements of the tensors written.
    public var parameters: Int
}

/// A source checkpoint directory opened for rewriting.
public final class CheckpointRewriter {
    /// The source checkpoint directory.
    public let model: URL
    /// Its tensors.
    public let store: CheckpointTensors
    /// Its config.json, every key.
    public let config: [String: Any]
    /// Its config.json as the model reads it.
    public let llamaConfig: LlamaConfig

    /// Opens `model` after CheckpointValidation: a checkpoint no runtime could load is never rewritten
    /// (refusals name the file).
    public init(model: URL) throws {
        let checkpoint = try CheckpointValidation.validate(model)
        self.model = model
        config = try ConfigJSON.read(model.appendingPathComponent("config.json"))
        llamaConfig = checkpoint.config
        store = checkpoint.tensors
    }

    /// The source's tensor names, file by file in data order, each only in the file the index assigns it
    /// to (a shard may carry stale extra entries).
    public var tensorNames: [String] {
        store.files.flatMap { file in file.entries.filter { (try? store.entry($0.name))?.file === file }.map(\.name) }
    }

    /// Elements of every source tensor (a tied lm_head is not stored, so it is not counted twice).
    public var parameterCount: Int {
        tensorNames.reduce(0) { $0 + ((try? store.entry($1).entry.elementCount) ?? 0) }
    }

    /// Elements of the source tensors that `tensors` read.
    public func parameterCount(of tensors: [RewrittenTensor]) -> Int {
        tensors.reduce(0) { $0 + ((try? store.entry($1.source).entry.elementCount) ?? 0) }
    }

    /// The text of the source's companion file `name` (e.g. its README.md), if it has one.
    public func companionText(_ name: String) throws -> String? {
        let url = model.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let data = FileManager.default.contents(atPath: url.path) else { throw PruneError(file: url, "cannot read") }
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes `tensors` (in this order) and `config` to `destination`, converting floating tensors to
    /// `dtype` (F32, F16, BF16) when given, else keeping each source tensor's dtype. `extraFiles` (name → bytes) are
    /// written too, in place of any companion file of the same name (e.g. a new model card).
    public func write(_ tensors: [RewrittenTensor], config: [String: Any], dtype: SafetensorsDType?,
                      extraFiles: [String: Data] = [:], to destination: CheckpointDestination) throws -> CheckpointRewriteResult {
        if let dtype, ![.F32, .F16, .BF16].contains(dtype) {
            throw PruneError("--dtype", "\(dtype.rawValue) is not a supported output dtype (f32, bf16, f16)")
        }
        let plan = try Plan(store: store, tensors: tensors, dtype: dtype)
        let weightFiles = Set(store.files.map { $0.url.lastPathComponent })
        let sorted = try CompanionFiles.sort(model, weightFiles: weightFiles)
        let companions = (copied: sorted.copied.filter { extraFiles[$0.lastPathComponent] == nil }, leftBehind: sorted.leftBehind)
        let indexURL = model.appendingPathComponent("model.safetensors.index.json")
        let sourceIndex = store.isSharded ? try ConfigJSON.read(indexURL) : nil
        let configData = try ConfigJSON.data(config)

        try destination.write { directory in
            try AtomicFile.write(configData, to: directory.appendingPathComponent("config.json"))
            for file in companions.copied {
                // Bytes, not copyItem: a read-only source must not give a read-only copy.
                guard let data = FileManager.default.contents(atPath: file.path) else { throw PruneError(file: file, "cannot read") }
                try AtomicFile.write(data, to: directory.appendingPathComponent(file.lastPathComponent))
            }
            try plan.write(into: directory, sourceIndex: sourceIndex)
            for (name, data) in extraFiles.sorted(by: { $0.key < $1.key }) {
                try AtomicFile.write(data, to: directory.appendingPathComponent(name))
            }
        }
        return CheckpointRewriteResult(
            weightFiles: plan.shards.map(\.name) + (plan.sharded ? ["model.safetensors.index.json"] : []),
            dtypes: plan.dtypes, copiedFiles: companions.copied.map(\.lastPathComponent),
            leftBehind: companions.leftBehind, parameters: plan.parameters)
    }

    /// `config` with the dtype keys set to transformers' name of `dtype` (when given) and the keys that
    /// changed. transformers 4 writes "torch_dtype", 5 writes "dtype": whichever the file has is kept.
    public static func recordingDtype(_ config: [String: Any], _ dtype: SafetensorsDType?) -> (values: [String: Any], edited: [String]) {
        guard let dtype, let name = torchName(dtype) else { return (config, []) }
        var values = config
        let keys = ["torch_dtype", "dtype"].filter { config[$0] != nil }
        for key in keys.isEmpty ? ["torch_dtype"] : keys { values[key] = name }
        return (values, keys.isEmpty ? ["torch_dtype"] : keys)
    }

    /// transformers' name of a safetensors dtype ("bfloat16", …).
    public static func torchName(_ dtype: SafetensorsDType) -> String? {
        switch dtype {
        case .F32: "float32"
        case .F16: "float16"
        case .BF16: "bfloat16"
        case .F64: "float64"
        default: nil
        }
    }
}

extension CheckpointRewriter {
    /// One output tensor with where it comes from and the dtype it is written in.
    struct PlannedTensor {
        let file: SafetensorsFile
        let entry: SafetensorsEntry
        let output: RewrittenTensor
        let dtype: SafetensorsDType

        var outputBytes: Int { entry.elementCount * dtype.size }

        /// The item to write: the original bytes, or the values (new or converted) through Float32.
        func item() throws -> SafetensorsItem {
            guard let values = output.values else {
                if dtype == entry.dtype {
                    return SafetensorsItem(name: output.name, dtype: dtype, shape: entry.shape, bytes: try file.rawBytes(entry.name))
                }
                let (file, name) = (file, entry.name)
                return SafetensorsItem(name: output.name, shape: entry.shape, dtype: dtype) { try file.tensor(name) }
            }
            return SafetensorsItem(name: output.name, shape: entry.shape, dtype: dtype, values: values)
        }
    }

    /// The output files, each with its tensors in order.
    struct Plan {
        /// One file named model.safetensors when unsharded.
        let shards: [(name: String, tensors: [PlannedTensor])]
        let sharded: Bool
        /// `__metadata__` of the source files merged (the first file's value wins on a clash).
        let metadata: [String: String]

        init(store: CheckpointTensors, tensors: [RewrittenTensor], dtype: SafetensorsDType?) throws {
            var planned: [PlannedTensor] = []
            var seen = Set<String>()
            for t in tensors {
                let (file, entry) = try store.entry(t.source)
                guard seen.insert(t.name).inserted else { throw PruneError(file: store.directory, "tensor \"\(t.name)\" planned twice") }
                let outDtype = dtype.map { entry.dtype.isFloatingSupported ? $0 : entry.dtype } ?? entry.dtype
                if t.values != nil && ![.F32, .F16, .BF16].contains(outDtype) {
                    throw PruneError(file: file.url, "tensor \"\(entry.name)\" is \(entry.dtype.rawValue); new values can only be written as F32, F16 or BF16")
                }
                planned.append(PlannedTensor(file: file, entry: entry, output: t, dtype: outDtype))
            }
            var metadata: [String: String] = [:]
            var largestSourceFile = 0
            for file in store.files {
                metadata.merge(file.metadata) { first, _ in first }
                // Sizes after conversion, so that a converted checkpoint keeps the source's shard count.
                let own = file.entries.filter { (try? store.entry($0.name))?.file === file }
                let bytes = own.reduce(0) { sum, e in
                    sum + e.elementCount * (dtype.map { e.dtype.isFloatingSupported ? $0 : e.dtype } ?? e.dtype).size
                }
                largestSourceFile = max(largestSourceFile, bytes)
            }
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

        /// Elements written.
        var parameters: Int { shards.reduce(0) { $0 + $1.tensors.reduce(0) { $0 + $1.entry.elementCount } } }

        /// Bytes of all tensors as written.
        var totalBytes: Int { shards.reduce(0) { $0 + $1.tensors.reduce(0) { $0 + $1.outputBytes } } }

        /// Output dtypes by element count, the most common first.
        var dtypes: [SafetensorsDType] {
            var count: [SafetensorsDType: Int] = [:]
            for shard in shards { for t in shard.tensors { count[t.dtype, default: 0] += t.entry.elementCount } }
            return count.sorted { ($0.value, $1.key.rawValue) > ($1.value, $0.key.rawValue) }.map(\.key)
        }

        /// Writes the safetensors files, and the index when sharded, into `directory`. The source's index
        /// object keeps its keys besides the weight map (total_size and total_parameters updated). Each
        /// file's tensors are materialised only while it is written.
        func write(into directory: URL, sourceIndex: [String: Any]?) throws {
            var weightMap: [String: String] = [:]
            for shard in shards {
                try SafetensorsWriter.write(try shard.tensors.map { try $0.item() }, metadata: metadata,
                                            to: directory.appendingPathComponent(shard.name))
                for t in shard.tensors { weightMap[t.output.name] = shard.name }
                // The source pages this shard read leave the resident set (they stay in the page cache): a
                // rewrite of a 16 GB checkpoint keeps one shard's worth resident, not the whole file.
                var dropped = Set<ObjectIdentifier>()
                for t in shard.tensors where dropped.insert(ObjectIdentifier(t.file)).inserted { t.file.dropResidentPages() }
            }
            guard sharded else { return }
            var index = sourceIndex ?? [:]
            var indexMetadata = index["metadata"] as? [String: Any] ?? [:]
            indexMetadata["total_size"] = NSNumber(value: totalBytes)
            if indexMetadata["total_parameters"] != nil { indexMetadata["total_parameters"] = NSNumber(value: parameters) }
            index["metadata"] = indexMetadata
            index["weight_map"] = weightMap
            try AtomicFile.write(try ConfigJSON.data(index), to: directory.appendingPathComponent("model.safetensors.index.json"))
        }
    }
}
