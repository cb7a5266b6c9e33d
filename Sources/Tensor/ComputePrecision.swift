// How the frozen projections and the lm_head multiply: Float32 (the default, the exact path every reference test
// checks) or bf16 with Float32 accumulation, as `torch.autocast("cpu", dtype=torch.bfloat16)` does — through oneDNN,
// loaded at run time like OpenBLAS, on CPUs with bf16 units (AVX512-BF16; AMX where present). Everything else
// (norms, softmax, attention, losses, LoRA factors, trainable weights, gradients, the optimizer) stays Float32.
import CDNNL
import Foundation

public enum ComputePrecision: String, Sendable, CaseIterable, Codable {
    case f32, bf16

    /// Throws one line saying what is missing when this precision cannot run here: bf16 needs a CPU with bf16 units
    /// and oneDNN (libdnnl2) using them. Returns what bf16 runs on (nil for f32).
    @discardableResult
    public func checkAvailable(cpu: CPUInfo = .current) throws -> DNNLRuntime.Info? {
        guard self == .bf16 else { return nil }
        guard cpu.avx512bf16 || cpu.amx else {
            throw DNNLRuntime.Unavailable(description: "--compute bf16 needs a CPU with bf16 units (AVX512-BF16 or AMX); this "
                + "\(cpu.model.isEmpty ? "CPU" : cpu.model) has \(cpu.featureList)")
        }
        let info = try DNNLRuntime.load()
        guard info.isa == "avx512_core_bf16" || info.isa == "avx512_core_amx" else {
            throw DNNLRuntime.Unavailable(description: "--compute bf16: oneDNN \(info.version) runs \(info.isa) here, without bf16 "
                + "instructions (is ONEDNN_MAX_CPU_ISA set?)")
        }
        return info
    }
}

/// oneDNN, loaded once.
public enum DNNLRuntime {
    public struct Info: Sendable {
        public let library: String
        public let version: String
        /// The instruction set oneDNN chose ("avx512_core_amx", "avx512_core_bf16", ...).
        public let isa: String

        /// "oneDNN 2.6.3 (avx512_core_amx)".
        public var summary: String { "oneDNN \(version) (\(isa))" }
    }

    /// oneDNN or bf16 compute is not available, with the reason in one line.
    public struct Unavailable: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func load() throws -> Info { try loaded.get() }

    private static let loaded: Result<Info, Unavailable> = {
        let p = pk_dnnl_load().pointee
        guard p.loaded != 0 else { return .failure(Unavailable(description: "--compute bf16: " + string(p.error))) }
        return .success(Info(library: string(p.library), version: string(p.version), isa: string(p.isa)))
    }()

    private static func string<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
