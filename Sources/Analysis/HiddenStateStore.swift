// The L+1 hidden states of one batch, kept token-major so that the states of one position form one
// contiguous (S, C) matrix, the operand of its Gram matrix. Allocated once for the largest batch and
// reused, so that the pass over many batches allocates nothing per batch.
// Dimension glossary: S = L+1 hidden states, C model dim, N rows (B·T), B batch, T tokens.
import Tensor

/// Reused storage for h_0…h_L of every row of a batch.
public final class HiddenStateStore {
    /// S = L+1
    public let stateCount: Int
    /// C
    public let width: Int
    /// Rows the buffer holds.
    public private(set) var capacity = 0
    private var states: UnsafeMutablePointer<Float>   // (N, S, C)

    public init(stateCount: Int, width: Int) {
        self.stateCount = stateCount
        self.width = width
        states = .allocate(capacity: 1)
    }

    deinit { states.deallocate() }

    /// Makes room for `rows` rows (contents are not kept when it grows).
    public func reserve(rows: Int) {
        guard rows > capacity else { return }
        states.deallocate()
        states = .allocate(capacity: rows * stateCount * width)
        capacity = rows
    }

    /// Stores h_l of `rows` rows from the layer-major `h` (N, C).
    public func store(layer l: Int, from h: UnsafePointer<Float>, rows: Int) {
        precondition(rows <= capacity && l < stateCount, "store beyond the reserved rows or states")
        let S = stateCount, C = width
        for r in 0..<rows { (states + (r * S + l) * C).update(from: h + r * C, count: C) }
    }

    /// The (S, C) states of row r.
    public func row(_ r: Int) -> UnsafePointer<Float> { UnsafePointer(states + r * stateCount * width) }

    /// Copies h_l of rows first..<first+count into `out` (count, C).
    public func gather(layer l: Int, rows first: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        let S = stateCount, C = width
        for r in 0..<count { (out + r * C).update(from: states + ((first + r) * S + l) * C, count: C) }
    }

    /// h_l of a whole batch as a (B, T, C) tensor.
    public func tensor(layer l: Int, batch b: Int, length t: Int) -> Tensor {
        let h = Tensor(zeros: [b, t, width])
        gather(layer: l, rows: 0, count: b * t, into: h.data)
        return h
    }
}
