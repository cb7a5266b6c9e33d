// What an adapter was trained on: the base's shape (layers, width, vocabulary), the layers dropped from the
// original when the base is a cut (from its prune_cut.json), and a digest of the base's tensor names, shapes
// and a sample of values. An adapter trained on a cut model and loaded onto the full one (or the reverse)
// otherwise loads with no error and no sense (peft #1746): with this, our loaders refuse it, naming both.
// Stored in adapter_model.safetensors' __metadata__ ("prune_base"), which PEFT ignores silently.
import Foundation
import Support
import Tensor

/// The identity of a base checkpoint, as an adapter records it.
public struct BaseFingerprint: Codable, Equatable, Sendable {
    /// The base's directory when the adapter was made (informative only).
    public var source: String
    /// num_hidden_layers.
    public var layers: Int
    public var hiddenSize: Int
    public var vocabSize: Int
    /// Layers of the original removed to make the base (0-based), when the base is a cut; nil otherwise.
    public var droppedFromOriginal: [Int]?
    /// FNV-1a 64 over every tensor's name and shape and a sample of a few tensors' values, hex.
    public var digest: String

    /// The metadata key in adapter_model.safetensors.
    public static let metadataKey = "prune_base"

    /// The fingerprint of the checkpoint in `directory`.
    public static func of(_ directory: URL) throws -> BaseFingerprint {
        let config = try LlamaConfig.load(directory.appendingPathComponent("config.json"))
        let store = try CheckpointTensors(directory: directory)
        var hash = FNV1a()
        let names = store.files.flatMap { $0.entries.map(\.name) }.sorted()
        for name in names {
            // Name, dtype, shape, and the stored bytes of 16 evenly spaced elements (read in place, so that even
            // an 8B checkpoint is fingerprinted in milliseconds).
            let (file, entry) = try store.entry(name)
            hash.add(name)
            hash.add(entry.dtype.rawValue)
            for d in entry.shape { hash.add(UInt64(d)) }
            let raw = try file.rawBytes(name), size = entry.dtype.size, count = entry.elementCount
            guard count > 0 else { continue }
            for k in 0..<16 {
                let i = count * k / 16
                hash.add(UnsafeRawBufferPointer(rebasing: raw[(i * size)..<((i + 1) * size)]))
            }
        }
        let L = config.numHiddenLayers
        var dropped: [Int]? = nil
        let cut = directory.appendingPathComponent("prune_cut.json")
        if let data = FileManager.default.contents(atPath: cut.path),
           let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let d = obj["dropped"] as? [Int] {
            dropped = d
        }
        return BaseFingerprint(source: directory.path, layers: L, hiddenSize: config.hiddenSize, vocabSize: config.vocabSize,
                               droppedFromOriginal: dropped, digest: String(format: "%016llx", hash.value))
    }

    /// Why a model with fingerprint `model` is not this adapter's base, in words; nil when it is.
    public func mismatch(with model: BaseFingerprint) -> String? {
        guard digest != model.digest else { return nil }
        var what: [String] = []
        if layers != model.layers { what.append("\(layers) layers vs \(model.layers)") }
        if droppedFromOriginal != model.droppedFromOriginal {
            func describe(_ d: [Int]?) -> String { d.map { "a cut without layers \($0.map(String.init).joined(separator: ","))" } ?? "not a cut" }
            what.append("trained on \(describe(droppedFromOriginal)), given \(describe(model.droppedFromOriginal))")
        }
        if hiddenSize != model.hiddenSize || vocabSize != model.vocabSize { what.append("another shape") }
        if what.isEmpty { what.append("other weights") }
        return "the adapter was trained on \(source) (\(digest)), not on \(model.source) (\(model.digest)): " + what.joined(separator: "; ")
    }

    /// The JSON string stored in the adapter's metadata.
    public var metadataValue: String {
        return String(decoding: (try? JSONEncoder.sortedLine.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// 64-bit FNV-1a.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ bytes: some Sequence<UInt8>) {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    }
    mutating func add(_ s: String) { add(Array(s.utf8) + [0]) }
    mutating func add(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { add($0) } }
}
