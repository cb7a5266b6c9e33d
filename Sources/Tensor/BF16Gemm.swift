// The bf16 products of `--compute bf16`: y = x·Wᵀ and dx = dy·W for a frozen weight, with the activation rounded to
// bf16 (nearest even, as autocast rounds) at the GEMM's input, the weight rounded once into oneDNN's preferred
// packed layout, and Float32 accumulation and output. One oneDNN primitive per shape (M, K, N, accumulate), made
// once and kept; one packed copy of a weight per direction and layout (in practice one for forward, one for
// backward), made on first use and kept with the weight.
import CDNNL
import Foundation

enum BF16Gemm {
    /// y (N, O) = x (N, I)·Wᵀ, plus y when `accumulate`.
    static func linear(_ x: UnsafePointer<Float>, rows n: Int, weight: Weight, packs: BF16Packs,
                       into y: UnsafeMutablePointer<Float>, accumulate: Bool, parallelism: Parallelism) {
        let O = weight.rows, I = weight.columns
        let gemm = primitive(m: n, k: I, n: O, accumulate: accumulate)
        let packed = packs.packed(for: gemm, direction: .forward, weight: weight, parallelism: parallelism)
        run(gemm, x, rows: n, columns: I, packed: packed, into: y, parallelism: parallelism)
    }

    /// dx (N, I) = dy (N, O)·W, plus dx when `accumulate`.
    static func linearInputGradient(_ dy: UnsafePointer<Float>, rows n: Int, weight: Weight, packs: BF16Packs,
                                    into dx: UnsafeMutablePointer<Float>, accumulate: Bool, parallelism: Parallelism) {
        let O = weight.rows, I = weight.columns
        let gemm = primitive(m: n, k: O, n: I, accumulate: accumulate)
        let packed = packs.packed(for: gemm, direction: .backward, weight: weight, parallelism: parallelism)
        run(gemm, dy, rows: n, columns: O, packed: packed, into: dx, parallelism: parallelism)
    }

    /// Rounds the (rows, columns) activation to bf16 in a pooled scratch, then multiplies.
    private static func run(_ gemm: OpaquePointer, _ a: UnsafePointer<Float>, rows: Int, columns: Int,
                            packed: UnsafeRawPointer, into c: UnsafeMutablePointer<Float>, parallelism: Parallelism) {
        let scratch = WeightScratch.shared.take((rows * columns + 1) / 2)
        defer { WeightScratch.shared.put(scratch) }
        let halves = UnsafeMutableRawPointer(scratch.0).assumingMemoryBound(to: UInt16.self)
        parallelism.ranges(rows, minimumPerWorker: 64) { r in
            Kernels.f32ToBF16(a + r.lowerBound * columns, halves + r.lowerBound * columns, r.count * columns)
        }
        let status = pk_bf16_gemm_run(gemm, halves, packed, c, Int32(parallelism.threads))
        precondition(status == 0, "oneDNN bf16 matmul failed (status \(status))")
    }

    private struct Shape: Hashable { let m, k, n: Int; let accumulate: Bool }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var primitives: [Shape: OpaquePointer] = [:]

    /// The primitive of this shape, made on first use. `ComputePrecision.checkAvailable` ran before any weight was
    /// marked for bf16, so a failure here is oneDNN's, not the input's.
    private static func primitive(m: Int, k: Int, n: Int, accumulate: Bool) -> OpaquePointer {
        let shape = Shape(m: m, k: k, n: n, accumulate: accumulate)
        lock.lock()
        defer { lock.unlock() }
        if let made = primitives[shape] { return made }
        var error = [CChar](repeating: 0, count: 512)
        guard let made = pk_bf16_gemm_create(Int64(m), Int64(k), Int64(n), accumulate ? 1 : 0, &error, error.count) else {
            preconditionFailure("bf16 matmul \(m)×\(k)×\(n): \(String(cString: error))")
        }
        primitives[shape] = made
        return made
    }

}

/// A frozen weight's bf16 copies in oneDNN's packed layouts, for x·Wᵀ (forward) and dy·W (backward).
public final class BF16Packs: @unchecked Sendable {
    enum Direction { case forward, backward }
    private let lock = NSLock()
    private var made: [(direction: Direction, layoutOf: OpaquePointer, bytes: UnsafeMutableRawPointer)] = []

    deinit { for p in made { p.bytes.deallocate() } }

    /// Bytes of bf16 copies held.
    public var byteCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return made.reduce(0) { $0 + pk_bf16_gemm_packed_size($1.layoutOf) }
    }

    /// The copy `gemm` reads, packing it on first use.
    func packed(for gemm: OpaquePointer, direction: Direction, weight: Weight, parallelism: Parallelism) -> UnsafeRawPointer {
        lock.lock()
        defer { lock.unlock() }
        if let found = made.first(where: { $0.direction == direction && pk_bf16_gemm_same_layout($0.layoutOf, gemm) != 0 }) {
            return UnsafeRawPointer(found.bytes)
        }
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: max(pk_bf16_gemm_packed_size(gemm), 64), alignment: 64)
        let I = Int64(weight.columns)
        // Forward: B = Wᵀ (I, O), element (i, o) at W[o·I + i]. Backward: B = W (O, I), element (o, i) at W[o·I + i].
        let (strideK, strideN): (Int64, Int64) = direction == .forward ? (1, I) : (I, 1)
        let status: Int32
        if weight.element == .bf16, let halves = weight.halves {
            status = pk_bf16_gemm_pack(gemm, halves, 1, strideK, strideN, bytes, Int32(parallelism.threads))
        } else {
            let f32 = weight.float32Copy()   // the tensor itself when Float32; f16 widened (exactly) first
            status = pk_bf16_gemm_pack(gemm, f32.data, 0, strideK, strideN, bytes, Int32(parallelism.threads))
        }
        precondition(status == 0, "oneDNN could not pack a \(weight.shape) weight for bf16 (status \(status))")
        made.append((direction, gemm, bytes))
        return UnsafeRawPointer(bytes)
    }
}
