// Keys and values of past positions for incremental decoding: per layer (B, capacity, G·D), after RoPE. Each
// layer counts its own stored positions, so that self-speculative decoding can run the draft's layers ahead of
// the others and roll rejected positions back.
import Checkpoint
import Tensor

/// Per-layer key/value cache for generation.
public final class KVCache {
    public let batch: Int         // B
    public let capacity: Int      // most positions it can hold
    public let width: Int         // G·D
    /// Positions stored, per layer (L).
    public private(set) var lengths: [Int]
    /// Positions stored in every layer.
    public var length: Int { lengths.min() ?? 0 }
    private let keys: [Tensor]    // L × (B, capacity, G·D)
    private let values: [Tensor]  // L × (B, capacity, G·D)

    public init(config: LlamaConfig, batch: Int, capacity: Int) {
        self.batch = batch
        self.capacity = capacity
        width = config.numKeyValueHeads * config.headDim
        lengths = Array(repeating: 0, count: config.numHiddenLayers)
        keys = (0..<config.numHiddenLayers).map { _ in Tensor(zeros: [batch, capacity, config.numKeyValueHeads * config.headDim]) }
        values = (0..<config.numHiddenLayers).map { _ in Tensor(zeros: [batch, capacity, config.numKeyValueHeads * config.headDim]) }
    }

    /// Writes T new rows per batch element of one layer after its stored ones (not yet counted until `advance`).
    func store(layer: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, batch b: Int, length t: Int) {
        let start = lengths[layer]
        precondition(start + t <= capacity, "KV cache full (\(capacity) positions)")
        for bi in 0..<b {
            (keys[layer].data + (bi * capacity + start) * width).update(from: k + bi * t * width, count: t * width)
            (values[layer].data + (bi * capacity + start) * width).update(from: v + bi * t * width, count: t * width)
        }
    }

    func pointers(layer: Int) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        (UnsafePointer(keys[layer].data), UnsafePointer(values[layer].data))
    }

    /// Counts T stored rows in every layer.
    func advance(by t: Int) { for l in lengths.indices { lengths[l] += t } }

    /// Counts T stored rows in one layer.
    package func advance(layer: Int, by t: Int) { lengths[layer] += t }

    /// Forgets the positions from `length` on in one layer (they are overwritten by the next store).
    public func truncate(layer: Int, to length: Int) {
        precondition(length >= 0 && length <= lengths[layer], "truncating layer \(layer) from \(lengths[layer]) to \(length)")
        lengths[layer] = length
    }

    /// Forgets the positions from `length` on in every layer.
    public func truncate(to length: Int) {
        for l in lengths.indices { truncate(layer: l, to: min(length, lengths[l])) }
    }
}
