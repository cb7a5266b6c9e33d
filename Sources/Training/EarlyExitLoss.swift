// LayerSkip's early-exit loss (Elhoushi et al., 2024): every layer's output goes through the one shared final
// norm and lm_head, and the loss is a weighted sum of the exits' next-token cross-entropies, weighted towards
// the deeper exits. Exit l (0…L−1) reads the output of layer l.
//   e(l)   = S · Σ_{i≤l} i                  for l < L−1
//   e(L−1) = (L−1) + S · Σ_{i≤L−2} i
//   w(t,l) = C(t,l)·e(l) / Σ_j C(t,j)·e(j)   (C the curriculum: which exits are on at step t)
//   loss   = Σ_l w(t,l) · mean CE of exit l
// This file holds the configuration and the per-step weights; `LlamaTrainingPass` takes the weights.
// Dimension glossary: L layers.
import Foundation

/// Which exits are on at a step: LayerSkip's curricula C(t, l).
public enum EarlyExitCurriculum: Equatable, Sendable, CustomStringConvertible {
    /// Every exit, every step: C(t, l) = 1.
    case none
    /// Every R-th exit, rotating with the step (exit l is on when (l + t) mod R = 0), plus the last exit
    /// always: about L/R extra lm_head passes per step instead of L−1.
    case rotational(Int)
    /// Exits switched on from the last layer downwards, one more every T/(2L) steps of a T-step run: exit l is
    /// on once t ≥ (L−1−l)·T/(2L), so every exit is on for the second half of training.
    case gradual

    /// Parses `none`, `rotational:R` (R ≥ 1) or `gradual`, as `--early-exit-curriculum` spells them.
    public init?(argument: String) {
        switch argument {
        case "none": self = .none
        case "gradual": self = .gradual
        default:
            let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "rotational", let r = Int(parts[1]), r >= 1 else { return nil }
            self = .rotational(r)
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .rotational(let r): "rotational:\(r)"
        case .gradual: "gradual"
        }
    }

    /// C(t, l) for exit l of an L-layer model at step t (0-based) of a `totalSteps`-step run. The last exit is
    /// always on.
    public func isActive(exit l: Int, layers L: Int, step t: Int, totalSteps: Int) -> Bool {
        if l == L - 1 { return true }
        switch self {
        case .none: return true
        case .rotational(let r): return (l + t) % r == 0
        case .gradual:
            // t ≥ (L−1−l)·T/(2L), in integers.
            return 2 * L * t >= (L - 1 - l) * max(totalSteps, 1)
        }
    }
}

/// The early-exit loss's settings: the scale S of the exit weights and the curriculum. Codable as
/// {"scale": 1, "curriculum": "rotational:4"} (the curriculum as `--early-exit-curriculum` spells it).
public struct EarlyExitLoss: Codable, Equatable, Sendable {
    /// S, how much the intermediate exits weigh against the last (paper: 1, e.g. `--early-exit-scale 1`).
    public var scale: Double
    /// Which exits are on at each step.
    public var curriculum: EarlyExitCurriculum

    public init(scale: Double = 1, curriculum: EarlyExitCurriculum = .none) {
        precondition(scale >= 0 && scale.isFinite, "early-exit scale \(scale) must be finite and ≥ 0")
        self.scale = scale
        self.curriculum = curriculum
    }

    enum CodingKeys: String, CodingKey { case scale, curriculum }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let scale = try c.decodeIfPresent(Double.self, forKey: .scale) ?? 1
        let text = try c.decodeIfPresent(String.self, forKey: .curriculum) ?? "none"
        guard let curriculum = EarlyExitCurriculum(argument: text) else {
            throw DecodingError.dataCorruptedError(forKey: .curriculum, in: c, debugDescription: "curriculum \(text) is not none, rotational:R or gradual")
        }
        guard scale >= 0 && scale.isFinite else {
            throw DecodingError.dataCorruptedError(forKey: .scale, in: c, debugDescription: "scale \(scale) must be finite and ≥ 0")
        }
        self.init(scale: scale, curriculum: curriculum)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(scale, forKey: .scale)
        try c.encode(curriculum.description, forKey: .curriculum)
    }

    /// e(l) for l = 0…L−1, before the curriculum and normalisation.
    public static func rawWeights(layers L: Int, scale S: Double) -> [Double] {
        precondition(L >= 1, "a model needs at least one layer")
        var e = (0..<L).map { l in S * Double(l * (l + 1) / 2) }
        e[L - 1] = Double(L - 1) + (L >= 2 ? S * Double((L - 2) * (L - 1) / 2) : 0)
        return e
    }

    /// The exit weights at step t (0-based) of a `totalSteps`-step run, for the training pass.
    public func weights(layers L: Int, step t: Int = 0, totalSteps: Int = 1) -> ExitWeights {
        let e = Self.rawWeights(layers: L, scale: scale)
        let on = (0..<L).map { e[$0] * (curriculum.isActive(exit: $0, layers: L, step: t, totalSteps: totalSteps) ? 1 : 0) }
        return ExitWeights(on)
    }
}

/// Per-exit weights w_l (l = 0…L−1) of one step, normalised to sum 1; exits of weight 0 are not computed.
public struct ExitWeights: Equatable, Sendable {
    /// L weights, summing to 1.
    public let weights: [Double]

    /// Normalises `raw` (L values ≥ 0) to sum 1; all zero (e.g. L = 1, or S = 0 with the last exit off) puts
    /// the whole weight on the last exit.
    public init(_ raw: [Double]) {
        precondition(!raw.isEmpty && raw.allSatisfy { $0 >= 0 && $0.isFinite }, "exit weights \(raw) must be finite and ≥ 0")
        let sum = raw.reduce(0, +)
        if sum > 0 {
            weights = raw.map { $0 / sum }
        } else {
            weights = raw.indices.map { $0 == raw.count - 1 ? 1 : 0 }
        }
    }

    /// Only the last exit: the ordinary loss.
    public static func lastOnly(layers L: Int) -> ExitWeights {
        ExitWeights((0..<L).map { $0 == L - 1 ? 1 : 0 })
    }

    /// The exits with a non-zero weight, in layer order.
    public var activeExits: [Int] { weights.indices.filter { weights[$0] > 0 } }
}
