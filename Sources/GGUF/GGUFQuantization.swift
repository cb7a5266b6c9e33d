// Float32 values to and from the bytes of each GGUFTensorType, as ggml's reference rows do it. F16 and BF16 round to
// nearest even. Q8_0 (quantize_row_q8_0_ref) works on blocks of 32 consecutive elements of a row: d = max|x| / 127,
// q = round(x / d) (half away from zero, computed as x · (1/d)), and d is stored as f16 (d₁₆). A value comes back as
// q · d₁₆, so the error of each element is bounded by its block's d:
//     |x − q·d₁₆| ≤ d/2 + 127·|d − d₁₆|      (d/2 from rounding q, the second term from storing d in f16)
// which is d/2 up to f16's relative rounding of d (2⁻¹¹): about 0.4 % of the block's largest magnitude.
import Tensor

/// Encoding and decoding of tensor data.
public enum GGUFQuantization {
    /// Largest finite f16 magnitude; larger values would be stored as infinity.
    public static let f16Max: Float = 65504

    /// What makes `count` values unstorable as `type` (non-finite values, magnitudes past f16 for F16 or for
    /// Q8_0's f16 scale), or nil when they can be stored.
    public static func problem(_ x: UnsafePointer<Float>, count: Int, as type: GGUFTensorType) -> String? {
        // On the bit patterns: with the sign cleared, a float's magnitude orders as its bits do, and every pattern from
        // infinity's up is infinity or NaN. (Concrete integer operations also keep a debug build fast.)
        let bits = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
        var largestBits: UInt32 = 0
        for i in 0..<count {
            let magnitude = bits[i] & 0x7FFF_FFFF
            if magnitude > largestBits { largestBits = magnitude }
        }
        guard largestBits < 0x7F80_0000 else {
            let i = (0..<count).first { !x[$0].isFinite } ?? 0
            return "holds a non-finite value (\(x[i]) at element \(i))"
        }
        let largest = Float(bitPattern: largestBits)
        switch type {
        case .f16 where largest > f16Max:
            return "holds values beyond f16's range (largest |x| = \(largest)); use bf16 or f32"
        case .q8_0 where largest / 127 > f16Max:
            return "holds values too large for q8_0's f16 block scale (largest |x| = \(largest)); use bf16 or f32"
        default:
            return nil
        }
    }

    /// Writes `count` values as `type` into `out`, which holds `type.byteCount(elements: count)` bytes (`count` a
    /// multiple of the type's block size).
    public static func encode(_ x: UnsafePointer<Float>, count: Int, as type: GGUFTensorType, into out: UnsafeMutableRawPointer) {
        switch type {
        case .f32: out.copyMemory(from: x, byteCount: count * 4)
        case .f16: Kernels.f32ToF16(x, out.assumingMemoryBound(to: UInt16.self), count)
        case .bf16: Kernels.f32ToBF16(x, out.assumingMemoryBound(to: UInt16.self), count)
        case .q8_0:
            for block in 0..<count / 32 { q8_0Block(x + block * 32, into: out + block * 34) }
        }
    }

    /// One Q8_0 block: the f16 scale, then 32 signed bytes.
    static func q8_0Block(_ x: UnsafePointer<Float>, into out: UnsafeMutableRawPointer) {
        var largest: Float = 0
        for j in 0..<32 { largest = max(largest, abs(x[j])) }
        var d = largest / 127
        let inverse: Float = d != 0 ? 1 / d : 0
        var half: UInt16 = 0
        Kernels.f32ToF16(&d, &half, 1)
        out.storeBytes(of: half.littleEndian, as: UInt16.self)
        for j in 0..<32 {
            out.storeBytes(of: Int8((x[j] * inverse).rounded(.toNearestOrAwayFromZero)), toByteOffset: 2 + j, as: Int8.self)
        }
    }

    /// Reads `count` values of `type` from `bytes` (unaligned reads allowed) into `out`.
    public static func decode(_ bytes: UnsafeRawPointer, count: Int, as type: GGUFTensorType, into out: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: bytes, byteCount: count * 4)
        case .f16, .bf16:
            let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
            defer { halves.deallocate() }
            UnsafeMutableRawPointer(halves).copyMemory(from: bytes, byteCount: count * 2)
            if type == .f16 { Kernels.f16ToF32(halves, out, count) } else { Kernels.bf16ToF32(halves, out, count) }
        case .q8_0:
            for block in 0..<count / 32 {
                let b = bytes + block * 34
                var half = UInt16(littleEndian: b.loadUnaligned(as: UInt16.self))
                var d: Float = 0
                Kernels.f16ToF32(&half, &d, 1)
                for j in 0..<32 { out[block * 32 + j] = d * Float(b.load(fromByteOffset: 2 + j, as: Int8.self)) }
            }
        }
    }
}
