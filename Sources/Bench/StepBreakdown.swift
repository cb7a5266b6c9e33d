// Where the time of a step goes (`prune bench --breakdown`): forward passes or LoRA training steps (r=8 on all
// seven projections, as TrainingBenchmark, plus zeroing the gradients and one AdamW update) run with a
// StepProfile on the model; each part gets ms per step, its share of the step, GFLOP/s where FLOPs are well
// defined and CPU utilisation (CPU time / (wall · threads)). Beside them the limits: the measured sgemm rate of
// one large GEMM on the same threads, and the FMA peak estimated from the CPU's features and clock.
// Dimension glossary: B batch, T tokens per sequence.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor
import Training

/// The parts of a measured step and the limits to read them against.
public struct StepBreakdown: Codable, Sendable {
    /// What a step is.
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// One inference forward pass (logits for every position).
        case forward
        /// Zero the gradients, forward + backward with LoRA r=8 on all seven projections, one AdamW update.
        case train
        /// The same with per-block recomputation (its recomputed forwards count as forward parts).
        case trainCheckpointed = "train-checkpointed"
    }

    /// One part (or a summary line) of the step.
    public struct Row: Codable, Sendable {
        /// "q forward", "attention backward", …
        public var part: String
        /// Wall time per step.
        public var milliseconds: Double
        /// Of the step's wall time, 0…1.
        public var share: Double
        /// FLOPs / wall time, where the part counts FLOPs.
        public var gflopsPerSecond: Double?
        /// CPU time / (wall time · threads), 0…1 (more when other threads of the process ran meanwhile).
        public var cpuUtilisation: Double?
    }

    public var model: String
    public var mode: Mode
    public var batch: Int
    public var length: Int
    public var threads: Int
    /// Timed steps (after one warm-up step).
    public var steps: Int
    /// Mean wall time of a step.
    public var stepMilliseconds: Double
    /// The whole step's CPU time / (wall · threads); thread idle is 1 − this.
    public var stepCPUUtilisation: Double
    /// Every part that took time, in `StepProfile.Part.all`'s order.
    public var parts: [Row]
    /// All projections' base GEMMs together, the step outside every part (allocation, copies, loop overhead),
    /// and thread idle (1 − CPU utilisation, as a share of the step's thread time).
    public var summary: [Row]
    /// What the GEMM rows are compared with.
    public var limits: Limits

    /// The ceilings: one large sgemm measured, and the FMA peak estimated.
    public struct Limits: Codable, Sendable {
        /// "1024×1536×576": M×N×K of the measured GEMM.
        public var sgemmShape: String
        /// Its rate through `Gemm.multiply` on the breakdown's threads.
        public var sgemmGFLOPs: Double
        /// cores × 2 FMA units × lanes × 2 FLOPs × GHz; nil when the clock is unknown. An estimate.
        public var peakGFLOPs: Double?
        /// How the peak was estimated, in words.
        public var peakNote: String
        /// With --compute bf16: the same product in bf16 (`Gemm.linear` on a weight marked for bf16), measured the same way.
        public var bf16GemmGFLOPs: Double?
        /// With --compute bf16: the bf16 peak (AMX tiles or AVX512-BF16 dot products), estimated like the FMA peak.
        public var bf16PeakGFLOPs: Double?
        public var bf16PeakNote: String?

        public init(sgemmShape: String, sgemmGFLOPs: Double, peakGFLOPs: Double?, peakNote: String) {
            self.sgemmShape = sgemmShape
            self.sgemmGFLOPs = sgemmGFLOPs
            self.peakGFLOPs = peakGFLOPs
            self.peakNote = peakNote
        }
    }

    /// Runs one warm-up and `steps` profiled steps of `mode` on `model` with `batch` × `length` random tokens.
    /// LoRA adapters are attached for the training modes and removed again; the model's profile is cleared.
    public static func run(model: LlamaModel, name: String, mode: Mode, batch: Int, length: Int, steps: Int = 3,
                           rank: Int = 8, seed: UInt64 = 1, limits: Limits) throws -> StepBreakdown {
        precondition(steps > 0, "steps must be positive")
        let threads = model.parallelism.threads
        var rng = SeededGenerator(seed: seed)
        let tokens = (0..<batch * length).map { _ in Int32.random(in: 0..<Int32(model.config.vocabSize), using: &rng) }
        let step: () -> Void
        var cleanup: () -> Void = {}
        if mode == .forward {
            step = { _ = model.forward(tokens: tokens, batch: batch, length: length) }
        } else {
            let set = try TrainableSet(model: model, configuration: .lora(LoRASettings(rank: rank, alpha: Float(2 * rank), seed: seed)))
            cleanup = { for layer in model.layers { for p in Projection.allCases { layer.linear(p).lora = nil } } }
            let optimizer = AdamW(trainable: set, learningRate: 1e-4)
            let targets = NextTokenLoss.shiftedTargets(tokens: tokens, batch: batch, length: length)
            let pass = LlamaTrainingPass(model: model, batch: batch, length: length, checkpointing: mode == .trainCheckpointed)
            step = {
                model.profile.measure(.optimizer) { set.zeroGradients() }
                _ = pass.run(tokens: tokens, targets: targets)
                model.profile.measure(.optimizer) { optimizer.step() }
            }
        }
        let profile = StepProfile(threads: threads)
        model.profile = profile
        defer {
            model.profile = nil
            cleanup()
        }
        step()
        profile.reset()
        let start = StepProfile.Instant.now()
        for _ in 0..<steps { step() }
        let end = StepProfile.Instant.now()
        let wall = Double(end.wallNanoseconds - start.wallNanoseconds), cpu = Double(end.cpuNanoseconds - start.cpuNanoseconds)
        return breakdown(of: profile, model: name, mode: mode, batch: batch, length: length, steps: steps,
                         stepWallNanoseconds: wall / Double(steps), stepCPUNanoseconds: cpu / Double(steps), limits: limits)
    }

    /// The rows of what `profile` accumulated over `steps` steps of the given mean wall and CPU time.
    public static func breakdown(of profile: StepProfile, model: String, mode: Mode, batch: Int, length: Int, steps: Int,
                                 stepWallNanoseconds: Double, stepCPUNanoseconds: Double, limits: Limits) -> StepBreakdown {
        let threads = Double(profile.threads), perStep = 1 / Double(steps)
        func row(_ name: String, _ t: StepProfile.Totals) -> Row {
            let wall = Double(t.wallNanoseconds)
            return Row(part: name, milliseconds: wall * perStep / 1e6, share: wall * perStep / max(stepWallNanoseconds, 1),
                       gflopsPerSecond: t.flops > 0 && wall > 0 ? t.flops / wall : nil,
                       cpuUtilisation: wall > 0 ? Double(t.cpuNanoseconds) / (wall * threads) : nil)
        }
        let parts = StepProfile.Part.all.compactMap { p in profile.totals[p].map { row(p.name, $0) } }
        var projections = StepProfile.Totals()
        for (part, t) in profile.totals {
            guard case .projection = part else { continue }
            projections.wallNanoseconds += t.wallNanoseconds
            projections.cpuNanoseconds += t.cpuNanoseconds
            projections.flops += t.flops
        }
        let measured = profile.totals.values.reduce(0.0) { $0 + Double($1.wallNanoseconds) } * perStep
        let outside = max(0, stepWallNanoseconds - measured)
        let utilisation = stepCPUNanoseconds / (max(stepWallNanoseconds, 1) * threads)
        let idle = max(0, 1 - utilisation)
        let summary = [
            row("all projection GEMMs", projections),
            Row(part: "outside every part", milliseconds: outside / 1e6, share: outside / max(stepWallNanoseconds, 1)),
            Row(part: "thread idle (of thread time)", milliseconds: idle * stepWallNanoseconds / 1e6, share: idle),
        ]
        return StepBreakdown(model: model, mode: mode, batch: batch, length: length, threads: profile.threads, steps: steps,
                             stepMilliseconds: stepWallNanoseconds / 1e6, stepCPUUtilisation: utilisation, parts: parts,
                             summary: summary, limits: limits)
    }

    /// The limits on `threads` threads: a 1024×1536×576 sgemm through `Gemm.multiply` (as a projection runs it:
    /// x (M, K) · Wᵀ with W (N, K)), the best of 20 timed runs after a warm-up (a shared machine slows some), and the estimated FMA peak.
    /// With `compute` bf16 the same product in bf16 and the bf16 peak are added.
    public static func limits(threads: Int, compute: ComputePrecision = .f32) -> Limits {
        let m = 1024, n = 1536, k = 576
        let a = Tensor(zeros: [m, k]), b = Tensor(zeros: [n, k]), c = Tensor(zeros: [m, n])
        for i in 0..<a.count { a.data[i] = Float(i % 7) * 0.01 }
        for i in 0..<b.count { b.data[i] = Float(i % 5) * 0.01 }
        let parallelism = Parallelism(threads: threads)
        func best(_ product: () -> Void) -> Double {
            product()
            var best = Double.infinity
            for _ in 0..<20 {
                let start = DispatchTime.now().uptimeNanoseconds
                product()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start))
            }
            return 2 * Double(m * n * k) / best
        }
        let sgemm = best {
            Gemm.multiply(transA: false, transB: true, m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: k, c: c.data, ldc: n,
                          parallelism: parallelism)
        }
        let peak = fmaPeak(threads: threads)
        var limits = Limits(sgemmShape: "\(m)×\(n)×\(k)", sgemmGFLOPs: sgemm, peakGFLOPs: peak.gflops, peakNote: peak.note)
        if compute == .bf16 {
            let weight = Weight(b)
            weight.multiplyInBF16()
            limits.bf16GemmGFLOPs = best { Gemm.linear(a.data, rows: m, weight: weight, into: c.data, parallelism: parallelism) }
            let bf16 = bf16Peak(threads: threads)
            (limits.bf16PeakGFLOPs, limits.bf16PeakNote) = (bf16.gflops, bf16.note)
        }
        return limits
    }

    /// The bf16 peak: with AMX, threads × 1024 FLOPs per cycle (one 16×32·32×16 tile product every 16 cycles); with
    /// AVX512-BF16, threads × units × 32 bf16 pairs × 2 FLOPs per cycle; × the clock as in `fmaPeak`. An estimate.
    public static func bf16Peak(threads: Int) -> (gflops: Double?, note: String) {
        let cpu = CPUInfo.current
        // vdpbf16ps: two per cycle on AMD Zen 4/5, one on Intel (where it only matches the Float32 FMA peak).
        let units = cpu.vendor == "AuthenticAMD" ? 2 : 1
        let (perCycle, how) = cpu.amx ? (1024, "1024 FLOPs per cycle (AMX tiles)")
            : cpu.avx512bf16 ? (64 * units, "\(units) unit\(units == 1 ? "" : "s") × 32 bf16 pairs × 2 FLOPs (AVX512-BF16)") : (0, "")
        guard perCycle > 0, let mhz = cpuMHz() else { return (nil, "no bf16 peak estimate") }
        return (Double(threads * perCycle) * mhz / 1000, "estimate: \(threads) threads × \(how) × " + String(format: "%.2f GHz", mhz / 1000))
    }

    /// /proc/cpuinfo's first "cpu MHz": the current clock, which turbo and sharing move.
    static func cpuMHz() -> Double? {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let mhz = text.split(separator: "\n").first { $0.hasPrefix("cpu MHz") }
            .flatMap { $0.split(separator: ":").last }.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        return mhz.flatMap { $0 > 0 ? $0 : nil }
    }

    /// threads × 2 FMA units × lanes (16 floats with AVX-512, 8 with AVX2) × 2 FLOPs × GHz, the clock from
    /// /proc/cpuinfo's first "cpu MHz" (the current clock, which turbo and sharing move). An estimate: some
    /// AVX-512 parts have one 512-bit FMA unit, and clocks drop under wide vectors.
    public static func fmaPeak(threads: Int) -> (gflops: Double?, note: String) {
        let cpu = CPUInfo.current
        let lanes = cpu.avx512f ? 16 : cpu.avx2 && cpu.fma ? 8 : 4
        let isa = cpu.avx512f ? "AVX-512" : cpu.avx2 && cpu.fma ? "AVX2+FMA" : "SSE"
        guard let mhz = cpuMHz() else {
            return (nil, "no FMA peak estimate: /proc/cpuinfo gives no cpu MHz")
        }
        let gflops = Double(threads * 2 * lanes * 2) * mhz / 1000
        return (gflops, "estimate: \(threads) threads × 2 FMA units × \(lanes) lanes (\(isa)) × 2 FLOPs × "
                + String(format: "%.2f GHz (cpu MHz)", mhz / 1000))
    }
}
