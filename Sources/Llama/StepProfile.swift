// Where the time of a step goes: a profiler that the forward and backward passes report to through `ProfiledOps`,
// one entry per op kind. A `LlamaModel` holds one only while a breakdown runs (`profile` is nil otherwise, and each
// op then costs one optional check). A measurement reads the wall clock and the process's CPU clock (all its threads)
// around the op. Parts nest (a projection's LoRA work runs inside the projection's call): an outer part keeps
// only its own time, so the parts never add up to more than the step.
// CPU utilisation of a part = CPU time / (wall time · threads); the rest of the threads' time is idle (or spent
// by another process on a shared machine). Threads spinning while they wait count as busy.
// Checkpointing's recomputed block forwards count as forward parts.
import Checkpoint
import Foundation

/// Wall time, CPU time and floating-point operations per part of a forward pass or training step.
public final class StepProfile {
    /// Which way an op runs.
    public enum Pass: String, Sendable, CaseIterable, Codable {
        case forward, backward
    }

    /// A part of the step. Projections count their base GEMMs (forward x·Wᵀ; backward dy·W and, when the weight
    /// trains, dyᵀ·x); LoRA counts every adapter's low-rank products.
    public enum Part: Hashable, Sendable {
        case projection(Projection, Pass)
        case lora(Pass)
        case attention(Pass)
        /// RMSNorm, SwiGLU, RoPE and the residual adds, forward and backward.
        case elementwise
        /// Final lm_head GEMM(s), plus the chunked cross-entropy and its gradient when training (LMHeadLoss).
        case head
        /// Embedding gather (and its scatter-add, when the embedding trains).
        case embedding
        /// Zeroing the gradients and the AdamW update.
        case optimizer
        /// Allocating and zeroing a pass's buffers (the first touch of their pages).
        case workspace

        /// Every part, in the order a table lists them.
        public static let all: [Part] =
            Pass.allCases.flatMap { pass in Projection.allCases.map { Part.projection($0, pass) } }
            + [.lora(.forward), .lora(.backward), .attention(.forward), .attention(.backward), .elementwise, .head,
               .embedding, .optimizer, .workspace]

        /// "q forward", "attention backward", "elementwise (norms, SwiGLU, RoPE, residual)", …
        public var name: String {
            switch self {
            case .projection(let p, let pass): "\(p.rawValue.replacingOccurrences(of: "_proj", with: "")) \(pass.rawValue)"
            case .lora(let pass): "LoRA \(pass.rawValue)"
            case .attention(let pass): "attention \(pass.rawValue)"
            case .elementwise: "norms+SwiGLU+RoPE+residual"
            case .head: "lm_head (+ cross-entropy)"
            case .embedding: "embedding"
            case .optimizer: "optimizer (zero + AdamW)"
            case .workspace: "workspace (buffers)"
            }
        }
    }

    /// What one part accumulated.
    public struct Totals: Sendable, Equatable {
        /// Wall time inside the part, less the parts nested in it.
        public var wallNanoseconds: UInt64 = 0
        /// Process CPU time (all threads) over the same spans.
        public var cpuNanoseconds: UInt64 = 0
        /// Floating-point operations the part counted (2 per multiply-add); 0 where not defined.
        public var flops: Double = 0
        /// Measured calls.
        public var calls = 0

        public init() {}
    }

    /// A reading of both clocks.
    public struct Instant: Sendable {
        public var wallNanoseconds: UInt64
        public var cpuNanoseconds: UInt64

        /// Now: CLOCK_MONOTONIC and CLOCK_PROCESS_CPUTIME_ID.
        public static func now() -> Instant {
            var wall = timespec(), cpu = timespec()
            clock_gettime(CLOCK_MONOTONIC, &wall)
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu)
            return Instant(wallNanoseconds: UInt64(wall.tv_sec) * 1_000_000_000 + UInt64(wall.tv_nsec),
                           cpuNanoseconds: UInt64(cpu.tv_sec) * 1_000_000_000 + UInt64(cpu.tv_nsec))
        }
    }

    /// Threads the measured passes use: CPU utilisation is CPU time / (wall · threads).
    public let threads: Int
    /// Accumulated per part since `init` or the last `reset()`.
    public private(set) var totals: [Part: Totals] = [:]
    /// The parts being measured now, innermost last, with the time their nested parts took.
    private var open: [(part: Part, start: Instant, nestedWall: UInt64, nestedCPU: UInt64, flops: Double)] = []

    public init(threads: Int) {
        precondition(threads >= 1, "threads must be at least 1, got \(threads)")
        self.threads = threads
    }

    /// Runs `body` as `part`, which also gets `flops` (and whatever `addFLOPs` counts while it runs).
    public func measure<T>(_ part: Part, flops: Double = 0, _ body: () throws -> T) rethrows -> T {
        open.append((part, Instant.now(), 0, 0, flops))
        defer {
            let end = Instant.now()
            let m = open.removeLast()
            let wall = end.wallNanoseconds - m.start.wallNanoseconds
            let cpu = end.cpuNanoseconds &- m.start.cpuNanoseconds
            var t = totals[m.part] ?? Totals()
            t.wallNanoseconds += wall - min(wall, m.nestedWall)
            t.cpuNanoseconds += cpu - min(cpu, m.nestedCPU)
            t.flops += m.flops
            t.calls += 1
            totals[m.part] = t
            if !open.isEmpty {
                open[open.count - 1].nestedWall += wall
                open[open.count - 1].nestedCPU += cpu
            }
        }
        return try body()
    }

    /// Adds `flops` to the part being measured now (the innermost); nothing when none is.
    public func addFLOPs(_ flops: Double) {
        if !open.isEmpty { open[open.count - 1].flops += flops }
    }

    /// Forgets everything accumulated (after a warm-up step).
    public func reset() {
        precondition(open.isEmpty, "reset() inside a measurement")
        totals = [:]
    }
}

extension Optional where Wrapped == StepProfile {
    /// `body` measured as `part` when there is a profile; just `body` otherwise.
    @inline(__always)
    public func measure<T>(_ part: StepProfile.Part, flops: @autoclosure () -> Double = 0, _ body: () throws -> T) rethrows -> T {
        guard let profile = self else { return try body() }
        return try profile.measure(part, flops: flops(), body)
    }

    /// `addFLOPs` on the profile, when there is one.
    @inline(__always)
    public func addFLOPs(_ flops: @autoclosure () -> Double) {
        self?.addFLOPs(flops())
    }
}
