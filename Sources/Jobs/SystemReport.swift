// What a run executes on, in words: tool version, CPU, BLAS kernel set, our kernel variant, threads.
// Printed by `prune --version`, the bench header and `--verbose`, so that a speed figure says where it came from.
import Foundation
import Tensor

public enum SystemReport {
    /// The toolkit's version.
    public static let version = "0.4.0"

    /// One line each: version, CPU, BLAS, kernels, threads.
    public static func lines(threads: Int) -> [String] {
        let cpu = CPUInfo.current
        var out = ["prune \(version)"]
        out.append("cpu: \(cpu.model.isEmpty ? cpu.vendor : cpu.model) (family \(cpu.family) model \(cpu.modelNumber)); \(cpu.featureList)")
        do {
            let blas = try BLASRuntime.load()
            out.append("blas: \(blas.library), kernel \(blas.coreName) (\(blas.choice))")
            if let note = blas.slowerKernelNote { out.append(note) }
        } catch {
            out.append("blas: \(error)")
        }
        let note = KernelVariant.note
        out.append("kernels: \(KernelVariant.active)\(note.isEmpty ? "" : " (\(note))"); this CPU runs \(KernelVariant.supported.joined(separator: ", "))")
        out.append("threads: \(threads) of \(ProcessInfo.processInfo.activeProcessorCount) cores")
        return out
    }
}
