// What the processor offers, from cpuid (a feature counts only when the OS saves its registers).
import CKernels

public struct CPUInfo: Sendable {
    public let vendor: String
    public let model: String
    public let family: Int
    public let modelNumber: Int
    public let avx2: Bool, fma: Bool, f16c: Bool
    public let avx512f: Bool, avx512bw: Bool, avx512vl: Bool, avx512dq: Bool, avx512cd: Bool
    public let avx512bf16: Bool, avx512fp16: Bool
    public let amx: Bool

    /// The CPU this process runs on.
    public static let current = CPUInfo()

    private init() {
        var c = pk_cpu_info()
        pk_cpu_detect(&c)
        vendor = withUnsafeBytes(of: c.vendor) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        model = withUnsafeBytes(of: c.brand) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        family = Int(c.family); modelNumber = Int(c.model)
        avx2 = c.avx2 != 0; fma = c.fma != 0; f16c = c.f16c != 0
        avx512f = c.avx512f != 0; avx512bw = c.avx512bw != 0; avx512vl = c.avx512vl != 0
        avx512dq = c.avx512dq != 0; avx512cd = c.avx512cd != 0
        avx512bf16 = c.avx512bf16 != 0; avx512fp16 = c.avx512fp16 != 0
        amx = c.amx_tile != 0 && c.amx_bf16 != 0
    }

    /// The vector features that matter to us, as flags a person reads ("avx2 fma avx512f …").
    public var featureList: String {
        let all: [(String, Bool)] = [("avx2", avx2), ("fma", fma), ("f16c", f16c), ("avx512f", avx512f),
                                     ("avx512bw", avx512bw), ("avx512vl", avx512vl), ("avx512dq", avx512dq),
                                     ("avx512_bf16", avx512bf16), ("avx512_fp16", avx512fp16), ("amx", amx)]
        let present = all.filter(\.1).map(\.0)
        return present.isEmpty ? "none beyond SSE2" : present.joined(separator: " ")
    }

    /// The best OpenBLAS kernel set (an OPENBLAS_CORETYPE name) for these features, or nil when OpenBLAS's
    /// generic kernels are all this CPU can run. OpenBLAS 0.3.21 runs SkylakeX's sgemm on every AVX-512 CPU
    /// (its Cooperlake and SapphireRapids names map there too), Haswell's on AVX2 Intel, Zen's on AVX2 AMD.
    public var bestOpenBLASCore: String? {
        if avx512f && avx512bw && avx512vl && avx512dq && avx512cd && avx2 && fma { return "SkylakeX" }
        if avx2 && fma { return vendor == "AuthenticAMD" || vendor == "HygonGenuine" ? "Zen" : "Haswell" }
        return nil
    }
}
