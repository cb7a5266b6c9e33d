// OpenBLAS, loaded once with the kernel set this CPU deserves. Debian's OpenBLAS 0.3.21 does not know
// recent Xeons (e.g. family 6 model 207) and falls back to its generic "Prescott" kernels, 5× slower;
// OpenBLAS reads OPENBLAS_CORETYPE only while it loads, so we load it ourselves with that variable set.
import CBLAS
import CKernels
import Foundation

public enum BLASRuntime {
    /// What was loaded and how its kernels were chosen.
    public struct Info: Sendable {
        public let library: String
        /// The kernel set OpenBLAS runs (openblas_get_corename).
        public let coreName: String
        public let config: String
        /// How the kernel set was chosen, in words.
        public let choice: String
        /// When the environment's OPENBLAS_CORETYPE forces a kernel set slower than the one prune would choose for
        /// this CPU: one line saying which was set, which this CPU supports, and how to let prune choose.
        public let slowerKernelNote: String?
    }

    /// OpenBLAS could not be loaded.
    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Loads OpenBLAS (once). Never overrides an OPENBLAS_CORETYPE the user set.
    public static func load() throws -> Info { try loaded.get() }

    private static let loaded: Result<Info, LoadError> = {
        let userValue = getenvString("OPENBLAS_CORETYPE")
        let wanted = userValue == nil ? CPUInfo.current.bestOpenBLASCore : nil
        let p = pk_blas_load(wanted)!.pointee
        guard p.loaded != 0 else { return .failure(LoadError(description: string(p.error))) }
        let core = string(p.corename)
        let choice: String
        if let userValue { choice = "OPENBLAS_CORETYPE=\(userValue) set by the user" }
        else if let wanted { choice = "OPENBLAS_CORETYPE=\(wanted) set by prune for this CPU's \(CPUInfo.current.avx512f ? "AVX-512" : "AVX2")" }
        else { choice = "OpenBLAS's own detection (no AVX2 on this CPU)" }
        var note: String? = nil
        if let userValue, let best = CPUInfo.current.bestOpenBLASCore, rank(core) < rank(best) {
            let l2 = getenvString("OPENBLAS_L2_SIZE").map { " and OPENBLAS_L2_SIZE=\($0)" } ?? ""
            note = "note: the environment sets OPENBLAS_CORETYPE=\(userValue)\(l2), so OpenBLAS runs its \(core) kernels; this CPU "
                + "supports the faster \(best) kernels (on an AMD EPYC Zen 5, SkylakeX ran SmolLM2-shape forward passes 1.65× faster "
                + "than Haswell); unset OPENBLAS_CORETYPE\(l2.isEmpty ? "" : " and OPENBLAS_L2_SIZE") to let prune choose"
        }
        return .success(Info(library: string(p.library), coreName: core, config: string(p.config), choice: choice,
                             slowerKernelNote: note))
    }()

    /// How fast a kernel set's sgemm is, in order: OpenBLAS 0.3.21 runs SkylakeX's AVX-512 sgemm for SkylakeX,
    /// Cooperlake and SapphireRapids; Haswell's and Zen's are AVX2 + FMA; the rest older or generic.
    private static func rank(_ core: String) -> Int {
        switch core.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen", "skylake": return 2
        default: return 1
        }
    }

    /// cblas_sgemm, row-major. Only after `load()` succeeded.
    @inline(__always)
    static func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                      _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                      _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        pk_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// cblas_dgemm, row-major. Only after `load()` succeeded.
    static func dgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double,
                      _ a: UnsafePointer<Double>, _ lda: Int, _ b: UnsafePointer<Double>, _ ldb: Int,
                      _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int) {
        pk_dgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    private static func getenvString(_ name: String) -> String? {
        guard let v = getenv(name), v[0] != 0 else { return nil }
        return String(cString: v)
    }

    private static func string<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// The variant of our own C kernels (RMSNorm, softmax, SwiGLU, skinny LoRA products, ...) in use.
public enum KernelVariant {
    /// "scalar", "avx2" or "avx512".
    public static var active: String { String(cString: pk_kernels_active().pointee.name) }
    /// Why (empty when chosen by the CPU alone; else PRUNE_KERNELS and what became of it).
    public static var note: String { String(cString: pk_kernels_note()) }
    /// The variants this CPU runs, best last.
    public static var supported: [String] {
        [Int32(PK_ISA_SCALAR), Int32(PK_ISA_AVX2), Int32(PK_ISA_AVX512)].compactMap { pk_kernels_for($0).map { String(cString: $0.pointee.name) } }
    }
}
