// A dense, row-major Float32 array with a shape. Reference semantics: layers and optimizers update
// weights in place, and a Tensor is shared by whoever holds it.
import Foundation

/// A dense row-major Float32 tensor: it owns a 64-byte aligned buffer, or views part of another's (the
/// flat parameter, gradient and optimizer buffers of training hand out views).
public final class Tensor: @unchecked Sendable {
    /// Shape, outermost first, e.g. (V, C) for an embedding.
    public let shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int
    /// The elements; valid for the tensor's lifetime.
    public let data: UnsafeMutablePointer<Float>
    /// What keeps a view's memory alive; nil when this tensor owns its buffer.
    private let owner: AnyObject?

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        self.data = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        data.initialize(repeating: 0, count: max(count, 1))
        owner = nil
    }

    /// A view of `shape` on memory that `owner` keeps alive (e.g. a slice of a flat buffer).
    public init(viewing data: UnsafeMutablePointer<Float>, shape: [Int], owner: AnyObject) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = data
        self.owner = owner
    }

    /// A view of `count(shape)` elements of this tensor starting at element `offset`.
    public func view(offset: Int, shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        precondition(offset >= 0 && offset + n <= count, "view \(offset)+\(n) outside \(count) elements")
        return Tensor(viewing: data + offset, shape: shape, owner: owner ?? self)
    }

    /// A tensor holding `values` (count must match the shape).
    public convenience init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// A tensor filled with `value`.
    public convenience init(shape: [Int], repeating value: Float) {
        self.init(zeros: shape)
        data.update(repeating: value, count: count)
    }

    deinit { if owner == nil { UnsafeMutableRawPointer(data).deallocate() } }

    /// The elements as a buffer.
    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: data, count: count)
    }

    /// A copy of the elements.
    public var array: [Float] { Array(buffer) }

    /// A deep copy.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Sets every element to zero.
    public func zero() { data.update(repeating: 0, count: count) }

    /// Pointer to row `i` of the outermost dimension.
    @inlinable public func row(_ i: Int) -> UnsafeMutablePointer<Float> {
        data + i * (count / shape[0])
    }

    /// Element access by flat index.
    @inlinable public subscript(_ i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    /// Largest absolute element.
    public var maxAbs: Float {
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(data[i])) }
        return m
    }
}

extension Tensor {
    /// Largest |a - b| over all elements (shapes must hold the same count).
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(count == other.count, "count \(count) vs \(other.count)")
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(data[i] - other.data[i])) }
        return m
    }
}
