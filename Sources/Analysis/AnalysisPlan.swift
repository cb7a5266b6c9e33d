// What an analysis will do, known before it starts: the phases that run on every batch and what each
// costs in floating-point operations, counted on the padded batches. The command prints it at once (so
// a long run says what it is about to spend) and the progress line weighs each finished step by it.
// Dimension glossary: B batch, T tokens, N = B·T rows, C model dim, H/G query/kv heads, D head dim,
// F ffn dim, V vocab, L layers.
import Checkpoint
import Foundation

/// The phases of one analysis and their cost.
public struct AnalysisPlan: Sendable {
    /// The work done for every batch, in the order it runs.
    public enum Phase: String, CaseIterable, Sendable {
        case fullPass = "full pass"
        case statistics = "angular distance, Block Influence"
        case removalScan = "removal scan"
        case earlyExit = "early exit"
    }

    /// Steps of each phase per batch (layers of the pass, removed layers, exits); 0 for phases not run.
    public let steps: [Phase: Int]
    /// FLOPs of each phase over all batches.
    public let flops: [Phase: Double]
    /// FLOPs of each batch, all phases (in batch order), to place a step within the whole run.
    public let batchFLOPs: [Double]
    /// FLOPs of each phase of each batch.
    public let phaseFLOPs: [[Phase: Double]]
    public let samples: Int
    /// Real (unpadded) calibration tokens.
    public let tokens: Int
    /// Tokens including padding, as the passes compute them.
    public let paddedTokens: Int
    public let batchSize: Int
    public let layers: Int

    /// The plan of analysing `batches` of a model of shape `config` with `options`.
    public init(config c: LlamaConfig, batches: [CalibrationBatch], options: AnalysisOptions) {
        let L = c.numHiddenLayers, C = Double(c.hiddenSize), V = Double(c.vocabSize)
        let qDim = Double(c.numAttentionHeads * c.headDim), kvDim = Double(c.numKeyValueHeads * c.headDim)
        // Per token: q,o (C·HD each), k,v (C·GD each), gate/up/down (C·F each); 2 FLOPs per multiply-add.
        let layerWeights = 2 * (2 * C * qDim + 2 * C * kvDim + 3 * C * Double(c.intermediateSize))
        let lmHead = 2 * C * V
        var perBatch: [[Phase: Double]] = []
        for batch in batches {
            let n = Double(batch.rows)
            // Causal attention: scores and weighted sum over (T+1)/2 keys on average, 2·HD FLOPs each.
            let layer = n * (layerWeights + 2 * 2 * qDim * Double(batch.length + 1) / 2)
            var phase: [Phase: Double] = [:]
            phase[.fullPass] = Double(L) * layer + n * lmHead
            // Cosines of every pair (l, l+n) at every row: three dot products of length C.
            phase[.statistics] = n * Double((L + 1) * (L + 2) / 2) * 6 * C
            // Removing layer i resumes from h_i: layers i+1…L−1 and lm_head, for each i.
            phase[.removalScan] = options.removalScan ? Double(L * (L - 1) / 2) * layer + Double(L) * n * lmHead : 0
            phase[.earlyExit] = options.earlyExit ? Double(L) * n * lmHead : 0
            perBatch.append(phase)
        }
        phaseFLOPs = perBatch
        batchFLOPs = perBatch.map { $0.values.reduce(0, +) }
        var total: [Phase: Double] = [:]
        for p in Phase.allCases { total[p] = perBatch.reduce(0) { $0 + ($1[p] ?? 0) } }
        flops = total
        steps = [.fullPass: L, .statistics: 1, .removalScan: options.removalScan ? L : 0, .earlyExit: options.earlyExit ? L : 0]
        samples = batches.reduce(0) { $0 + $1.batch }
        tokens = batches.reduce(0) { $0 + $1.realTokens }
        paddedTokens = batches.reduce(0) { $0 + $1.rows }
        batchSize = options.batchSize
        self.layers = L
    }

    /// FLOPs of the whole analysis.
    public var totalFLOPs: Double { batchFLOPs.reduce(0, +) }

    /// The phases that run, in order.
    public var phases: [Phase] { Phase.allCases.filter { (steps[$0] ?? 0) > 0 } }

    /// FLOPs done once `step` of `steps` of `phase` of batch `batch` are complete (earlier batches and
    /// earlier phases of this batch included).
    public func flopsDone(batch: Int, phase: Phase, step: Int) -> Double {
        var done = batchFLOPs[..<batch].reduce(0, +)
        for p in phases {
            if p == phase { break }
            done += phaseFLOPs[batch][p] ?? 0
        }
        let n = max(steps[phase] ?? 1, 1)
        return done + (phaseFLOPs[batch][phase] ?? 0) * Double(min(step, n)) / Double(n)
    }

    /// Lines saying what will run and what it costs, e.g. "  removal scan  30 partial passes  15.5× …".
    public var summary: [String] {
        let full = max(flops[.fullPass] ?? 1, 1)
        func what(_ p: Phase) -> String {
            switch p {
            case .fullPass: "\(layers) layers + lm_head, hidden states kept"
            case .statistics: "cosines of every pair of hidden states"
            case .removalScan: "\(layers) passes, each resumed at the removed layer"
            case .earlyExit: "\(layers) exits through the final norm and lm_head"
            }
        }
        let width = phases.map { $0.rawValue.count }.max() ?? 0
        var lines = phases.map { p in
            let f = flops[p] ?? 0
            return "  " + p.rawValue.padding(toLength: width, withPad: " ", startingAt: 0)
                + String(format: "  %6.2f× a forward pass  %@  (%@)", f / full, Self.format(flops: f), what(p))
        }
        lines.append(String(format: "  total: %.2f forward passes, %@", totalFLOPs / full, Self.format(flops: totalFLOPs)))
        return lines
    }

    /// "3.2 GFLOP", "41 TFLOP".
    public static func format(flops f: Double) -> String {
        let units: [(Double, String)] = [(1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP")]
        for (scale, name) in units where f >= scale { return String(format: f / scale >= 100 ? "%.0f %@" : "%.1f %@", f / scale, name) }
        return String(format: "%.0f FLOP", f)
    }
}
