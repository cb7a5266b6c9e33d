// LayerSkip's layer dropout (Elhoushi et al., 2024): during training each sample skips each layer with a
// probability that rises with depth, p_l = P·(e^{l·ln2/(L−1)} − 1) (0 for the first layer, P for the last); a
// skipped layer passes that sample's residual stream through unchanged (no rescaling). The masks come from a
// per-step key through a hash (no global RNG), so a step can be redrawn exactly, e.g. on resume.
// Dimension glossary: B batch, L layers.
import Foundation

/// How the per-layer rates grow with depth.
public enum LayerDropoutShape: String, Codable, Equatable, CaseIterable, Sendable {
    /// p_l = P·(e^{l·ln2/(L−1)} − 1): LayerSkip's, 0 at the first layer, P at the last.
    case exponential
    /// p_l = P·l/(L−1).
    case linear
    /// p_l = P for every layer.
    case uniform
}

/// Layer dropout's settings: the largest rate P and how the rates grow with depth. Codable as
/// {"rate": 0.2, "shape": "exponential"}.
public struct LayerDropout: Codable, Equatable, Sendable {
    /// P, the last layer's skip probability (e.g. 0.2; `--layer-dropout 0.2`).
    public var rate: Double
    /// How the rates rise from the first layer to the last.
    public var shape: LayerDropoutShape

    public init(rate: Double, shape: LayerDropoutShape = .exponential) {
        precondition(rate >= 0 && rate <= 1, "layer dropout rate \(rate) outside [0, 1]")
        self.rate = rate
        self.shape = shape
    }

    /// p_l for l = 0…L−1, with P multiplied by `scale` (a schedule over training, e.g. ramping up; 1 = as set).
    public func rates(layers L: Int, scale: Double = 1) -> [Double] {
        let p = min(1, max(0, rate * scale))
        guard L > 1 else { return [shape == .uniform ? p : 0] }
        return (0..<L).map { l in
            let x = Double(l) / Double(L - 1)
            switch shape {
            case .exponential: return p * (exp(x * M_LN2) - 1)
            case .linear: return p * x
            case .uniform: return p
            }
        }
    }

    /// The skip mask of one micro-batch of B samples, drawn from `key` (use a fresh key per micro-batch, e.g.
    /// derived from the run's seed and the step): sample b skips layer l when its hash of (key, b, l) falls
    /// below p_l.
    public func mask(key: UInt64, batch b: Int, layers L: Int, scale: Double = 1) -> LayerSkipMask {
        let p = rates(layers: L, scale: scale)
        var rows: [[Bool]] = []
        for s in 0..<b {
            rows.append((0..<L).map { l in
                let u = Double(Self.hash(key, UInt64(s), UInt64(l)) >> 11) * 0x1p-53   // uniform in [0, 1)
                return u < p[l]
            })
        }
        return LayerSkipMask(rows)
    }

    /// SplitMix64's finaliser over the three inputs.
    static func hash(_ key: UInt64, _ b: UInt64, _ l: UInt64) -> UInt64 {
        var z = key &+ (b &* 0xD1B5_4A32_D192_ED03) &+ (l &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Which sample skips which layer in one pass: `skips[b][l]` = sample b passes layer l's input through.
public struct LayerSkipMask: Equatable, Sendable {
    /// B rows of L flags.
    public let skips: [[Bool]]

    public init(_ skips: [[Bool]]) {
        precondition(!skips.isEmpty && skips.allSatisfy { $0.count == skips[0].count }, "ragged skip mask")
        self.skips = skips
    }

    /// B.
    public var batch: Int { skips.count }
    /// L.
    public var layers: Int { skips[0].count }

    /// The samples that skip layer l.
    public func skippers(of l: Int) -> [Int] { skips.indices.filter { skips[$0][l] } }

    /// Whether every sample skips layer l (the layer then need not run at all).
    public func allSkip(_ l: Int) -> Bool { skips.allSatisfy { $0[l] } }

    /// Skip flags of every (sample, layer), counted.
    public var skippedCount: Int { skips.reduce(0) { $0 + $1.filter { $0 }.count } }
}
