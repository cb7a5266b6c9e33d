// Rotary position embedding tables in Hugging Face's rotate-half convention: for pair i < D/2 of a head,
// angle = position · inv_freq[i]; x[i], x[i + D/2] rotate together. Scaling kinds: linear, dynamic, llama3,
// yarn (whose attention factor also scales cos and sin, as transformers does).
// Tables are computed in Double and grown on demand (Llama 3 allows 128K positions; we build what is used).
import Checkpoint
import Foundation

/// cos/sin tables (P, D/2) for the positions used so far.
public final class RotaryEmbedding {
    public let headDim: Int               // D
    public let config: LlamaConfig
    /// inv_freq (D/2) after static scaling (linear, llama3).
    public let inverseFrequencies: [Double]
    /// Factor on cos and sin (yarn's attention factor; 1 otherwise).
    public let attentionScaling: Double
    public private(set) var cos: [Float] = []   // (P, D/2)
    public private(set) var sin: [Float] = []   // (P, D/2)
    public private(set) var length = 0          // P
    /// The inv_freq the tables were built with (dynamic scaling changes it with length).
    private var tableFrequencies: [Double]

    public init(config: LlamaConfig) {
        self.config = config
        headDim = config.headDim
        inverseFrequencies = Self.frequencies(config: config, base: config.ropeTheta)
        tableFrequencies = inverseFrequencies
        attentionScaling = config.ropeAttentionScaling
    }

    static func frequencies(config: LlamaConfig, base: Double) -> [Double] {
        let d = config.headDim
        var inv = (0..<d / 2).map { 1.0 / pow(base, Double(2 * $0) / Double(d)) }
        guard let s = config.ropeScaling else { return inv }
        switch s.ropeType {
        case "linear":
            inv = inv.map { $0 / (s.factor ?? 1) }
        case "llama3":
            let factor = s.factor ?? 1
            inv = inv.map { f in
                let smooth = config.llama3Smoothing(wavelength: 2 * Double.pi / f)
                return (1 - smooth) * f / factor + smooth * f
            }
        case "yarn":
            inv = yarnFrequencies(config: config, base: base, scaling: s)
        default:
            break  // dynamic: see ensure(length:)
        }
        return inv
    }

    /// YaRN: frequencies blend from extrapolated (fast-rotating pairs) to interpolated by `factor` (slow ones)
    /// along a linear ramp between the pairs that make beta_fast and beta_slow rotations over the
    /// pretraining length.
    static func yarnFrequencies(config: LlamaConfig, base: Double, scaling s: RopeScaling) -> [Double] {
        let d = Double(config.headDim)
        let original = Double(s.originalMaxPositionEmbeddings ?? config.maxPositionEmbeddings)
        let factor = config.yarnFactor
        func correctionDim(_ rotations: Double) -> Double {
            d * log(original / (rotations * 2 * .pi)) / (2 * log(base))
        }
        var low = correctionDim(s.betaFast ?? 32), high = correctionDim(s.betaSlow ?? 1)
        if s.truncate ?? true { low = low.rounded(.down); high = high.rounded(.up) }
        low = max(low, 0)
        high = min(high, d - 1)
        if low == high { high += 0.001 }
        return (0..<config.headDim / 2).map { i in
            let extrapolated = 1 / pow(base, Double(2 * i) / d)
            let interpolated = extrapolated / factor
            let ramp = min(max((Double(i) - low) / (high - low), 0), 1)
            let keep = 1 - ramp  // share of the extrapolated frequency
            return interpolated * (1 - keep) + extrapolated * keep
        }
    }

    /// Makes the tables cover positions 0..<n.
    public func ensure(length n: Int) {
        var freqs = tableFrequencies
        if let s = config.ropeScaling, s.ropeType == "dynamic" {
            // Dynamic NTK: past the trained length the base grows with the sequence (as transformers does).
            let maxPos = Double(s.originalMaxPositionEmbeddings ?? config.maxPositionEmbeddings)
            if Double(n) > maxPos {
                let d = Double(headDim), f = s.factor ?? 1
                let base = config.ropeTheta * pow(f * Double(n) / maxPos - (f - 1), d / (d - 2))
                freqs = Self.frequencies(config: config, base: base)
            } else {
                freqs = inverseFrequencies
            }
        }
        if freqs != tableFrequencies { length = 0; cos = []; sin = []; tableFrequencies = freqs }
        guard n > length else { return }
        let half = headDim / 2
        let target = max(n, min(max(length * 2, 256), config.maxPositionEmbeddings))
        cos.reserveCapacity(target * half)
        sin.reserveCapacity(target * half)
        for p in length..<target {
            for i in 0..<half {
                let a = Double(p) * tableFrequencies[i]
                cos.append(Float(Foundation.cos(a) * attentionScaling))
                sin.append(Float(Foundation.sin(a) * attentionScaling))
            }
        }
        length = target
    }
}
