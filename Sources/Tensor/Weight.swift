// A frozen-or-trainable weight matrix in the element type it is kept in: Float32 (a Tensor, owning or a view of a
// training buffer), or bfloat16 / float16 elements referenced where they lie (a memory-mapped safetensors file),
// never copied whole. The GEMMs (`Gemm.linear`, `Gemm.linearInputGradient`) widen a 16-bit weight to Float32 one
// block at a time into a small per-thread scratch and multiply with sgemm, so results are Float32 products of the
// same Float32 values the widened copy would hold; lookups (`widenRows`) widen just the rows they read.
// bf16 → f32 is exact (a shift); f16 → f32 is exact too (F16C or the scalar loop).
// Dimension glossary: O rows (out features, or V for an embedding), I columns (in features, or C).
import Foundation

/// What keeps mapped weights alive and can give their pages back to the kernel while they stay readable.
public protocol ResidentPages: AnyObject {
    func dropResidentPages()
}

/// How a weight's elements are stored.
public enum WeightElement: String, Sendable {
    case f32, bf16, f16

    /// Bytes per element.
    public var size: Int { self == .f32 ? 4 : 2 }
}

/// A 2-D (or 1-D) weight, Float32 or 16-bit.
public final class Weight: @unchecked Sendable {
    /// (O, I) for a projection or an embedding table.
    public let shape: [Int]
    /// Number of elements.
    public let count: Int
    /// The stored element type.
    public let element: WeightElement
    /// Where the elements are: a Float32 tensor, or 16-bit elements (row-major) valid while `owner` lives.
    private enum Storage {
        case float32(Tensor)
        case halves(UnsafePointer<UInt16>, owner: AnyObject)
    }
    private let storage: Storage

    /// Set by `multiplyInBF16()` (`--compute bf16`): the products with more than a few rows then run in bf16 through
    /// oneDNN from packed bf16 copies of this weight, made on first use.
    public private(set) var bf16Packs: BF16Packs?

    /// Makes the large products with this (frozen) weight run in bf16 with Float32 accumulation. Only after
    /// `ComputePrecision.bf16.checkAvailable()` succeeded.
    public func multiplyInBF16() {
        if bf16Packs == nil { bf16Packs = BF16Packs() }
    }

    /// Back to Float32 products (the bf16 copies are freed).
    public func multiplyInFloat32() {
        bf16Packs = nil
    }

    /// The Float32 tensor, when `element == .f32`.
    public var float32: Tensor? {
        if case .float32(let t) = storage { return t }
        return nil
    }

    /// The 16-bit elements, when `element` is `.bf16` or `.f16`.
    public var halves: UnsafePointer<UInt16>? {
        if case .halves(let p, _) = storage { return p }
        return nil
    }

    /// A Float32 weight.
    public init(_ tensor: Tensor) {
        shape = tensor.shape
        count = tensor.count
        element = .f32
        storage = .float32(tensor)
    }

    /// A 16-bit weight of `shape` whose elements lie at `halves` (2-byte aligned), kept alive by `owner`.
    public init(halves: UnsafePointer<UInt16>, element: WeightElement, shape: [Int], owner: AnyObject) {
        precondition(element != .f32, "16-bit weights only")
        precondition(Int(bitPattern: halves) % 2 == 0, "16-bit weights must be 2-byte aligned")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.element = element
        storage = .halves(halves, owner: owner)
    }

    /// Gives the resident pages of the file a 16-bit weight lies in back to the kernel (nothing for Float32): the
    /// weight stays valid and is read again on its next use.
    public func dropResidentPages() {
        if case .halves(_, let owner) = storage { (owner as? ResidentPages)?.dropResidentPages() }
    }

    /// Where the elements lie, in `element` type: for kernels that read any stored type (valid while self lives).
    var elementBase: UnsafeRawPointer {
        switch storage {
        case .float32(let t): UnsafeRawPointer(t.data)
        case .halves(let p, _): UnsafeRawPointer(p)
        }
    }

    /// O, the outermost dimension.
    public var rows: Int { shape[0] }
    /// I, the elements per row.
    public var columns: Int { rows == 0 ? 0 : count / rows }
    /// Bytes the elements occupy where they are stored.
    public var byteCount: Int { count * element.size }

    /// Rows first…first+n−1 as Float32 into dst (n, I).
    public func widenRows(_ first: Int, count n: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(first >= 0 && n >= 0 && first + n <= rows, "rows \(first)+\(n) outside \(rows)")
        let I = columns
        switch storage {
        case .float32(let t): dst.update(from: t.data + first * I, count: n * I)
        case .halves(let h, _) where element == .bf16: Kernels.bf16ToF32(h + first * I, dst, n * I)
        case .halves(let h, _): Kernels.f16ToF32(h + first * I, dst, n * I)
        }
    }

    /// Columns first…first+w−1 of every row as Float32 into dst (O, w).
    public func widenColumns(_ first: Int, width w: Int, into dst: UnsafeMutablePointer<Float>) {
        let I = columns
        precondition(first >= 0 && w >= 0 && first + w <= I, "columns \(first)+\(w) outside \(I)")
        for r in 0..<rows {
            switch storage {
            case .float32(let t): (dst + r * w).update(from: t.data + r * I + first, count: w)
            case .halves(let h, _) where element == .bf16: Kernels.bf16ToF32(h + r * I + first, dst + r * w, w)
            case .halves(let h, _): Kernels.f16ToF32(h + r * I + first, dst + r * w, w)
            }
        }
    }

    /// A new weight of these rows, in this order and this element type (a reduced lm_head: a draft's vocabulary).
    public func selectingRows(_ picked: [Int]) -> Weight {
        let I = columns
        precondition(picked.allSatisfy { $0 >= 0 && $0 < rows }, "a row outside 0…\(rows - 1)")
        switch storage {
        case .float32(let t):
            let out = Tensor(zeros: [picked.count, I])
            for (j, r) in picked.enumerated() { (out.data + j * I).update(from: t.data + r * I, count: I) }
            return Weight(out)
        case .halves(let h, _):
            let owned = OwnedHalves(count: picked.count * I)
            for (j, r) in picked.enumerated() { (owned.elements + j * I).update(from: h + r * I, count: I) }
            return Weight(halves: owned.elements, element: element, shape: [picked.count, I], owner: owned)
        }
    }

    /// The weight as a Float32 tensor: the tensor itself when Float32, else a widened copy.
    public func float32Copy() -> Tensor {
        if let float32 { return float32 }
        let t = Tensor(zeros: shape)
        if count > 0 { widenRows(0, count: rows, into: t.data) }
        return t
    }
}

/// 16-bit elements this process allocated (not mapped from a file), freed with their last weight.
private final class OwnedHalves {
    let elements: UnsafeMutablePointer<UInt16>
    init(count: Int) {
        elements = .allocate(capacity: max(count, 1))
        elements.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { elements.deallocate() }
}

/// Float32 scratch buffers for the widened weight blocks, one per concurrently running GEMM worker, reused across
/// calls (allocating megabytes per call would cost page faults on every projection).
final class WeightScratch: @unchecked Sendable {
    static let shared = WeightScratch()
    private let lock = NSLock()
    private var free: [(UnsafeMutablePointer<Float>, Int)] = []

    /// A buffer of at least `count` floats; give it back with `put`.
    func take(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        lock.lock()
        let found = free.popLast()
        lock.unlock()
        if let found, found.1 >= count { return found }
        if let found { found.0.deallocate() }
        let n = max(count, 1 << 16)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64)
        return (raw.bindMemory(to: Float.self, capacity: n), n)
    }

    func put(_ buffer: (UnsafeMutablePointer<Float>, Int)) {
        lock.lock()
        free.append(buffer)
        lock.unlock()
    }
}
