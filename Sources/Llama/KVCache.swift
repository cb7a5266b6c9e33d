// Keys and values of past positions for incremental decoding: per layer (B, capacity, G·D), after RoPE.
import Checkpoint
import Tensor

/// Per-layer key/value cache for generation.
public final class KVCache {
    public let batch: Int         // B
    public let capacity: Int      // most positions it can hold
    public let width: Int         // G·D
    /// Positions already stored.
    public private(set) var length = 0
    private let keys: [Tensor]    // L × (B, capacity, G·D)
    private let values: [Tensor]  // L × (B, capacity, G·D)

    public init(config: LlamaConfig, batch: Int, capacity: Int) {
        self.batch = batch
        self.capacity = capacity
        width = config.numKeyValueHeads * config.headDim
        keys = (0..<config.numHiddenLayers).map { _ in Tensor(zeros: [batch, capacity, config.numKeyValueHeads * config.headDim]) }
        values = (0..<config.numHiddenLayers).map { _ in Tensor(zeros: [batch, capacity, config.numKeyValueHeads * config.headDim]) }
    }

    /// Appends T new rows per batch element (not yet counted in `length` until `advance`).
    func store(layer: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, batch b: Int, length t: Int) {
        precondition(length + t <= capacity, "KV cache full (\(capacity) positions)")
        for bi in 0..<b {
            (keys[layer].data + (bi * capacity + length) * width).update(from: k + bi * t * width, count: t * width)
            (values[layer].data + (bi * capacity + length) * width).update(from: v + bi * t * width, count: t * width)
        }
    }

    func pointers(layer: Int) -> (keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        (UnsafePointer(keys[layer].data), UnsafePointer(values[layer].data))
    }

    func advance(by t: Int) { length += t }
}
