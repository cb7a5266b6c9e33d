// What a cut may do to the kept layer before each removed run instead of only deleting the run, so that the
// result is still a plain Llama checkpoint every runtime loads:
// - ReplaceMe (Shopkhoev et al. 2025): a linear map T estimated on calibration text (Analysis'
//   LinearReplacement) folded into that layer's MLP down-projection, W (C, F) → Tᵀ·W.
// - LaCo (Yang et al. 2024, "reserving differences while seeking common"): the run's parameter differences
//   added to that layer, θ_p + Σ_k (θ_k − θ_p), for the seven projections (and their biases); its norms stay.
import Checkpoint
import Support
import Tensor

/// How the kept layer before each removed run is changed.
public enum CutRepair: Sendable {
    /// ReplaceMe: kept layer p → T (C, C, row-major, for row vectors) folded into its down_proj.
    case linear([Int: [Double]])
    /// LaCo: each run merged into the kept layer before it.
    case layerMerge

    /// The name users give it (`--replace`).
    public var name: String {
        switch self {
        case .linear: "replaceme"
        case .layerMerge: "laco"
        }
    }

    /// Source tensor name → its new values, for the kept layers before the runs of `dropped` (0-based, any order).
    func replacedTensors(_ store: CheckpointTensors, dropped: [Int]) throws -> [String: () throws -> Tensor] {
        var out: [String: () throws -> Tensor] = [:]
        for run in LayerSelection.ranges(dropped.sorted()) {
            let p = run.lowerBound - 1
            guard p >= 0 else {
                throw PruneError("--replace", "\(name) changes the layer before the removed block, and layers \(LayerSelection(run)) start at layer 0")
            }
            switch self {
            case .linear(let maps):
                guard let t = maps[p] else { throw PruneError("--replace", "no replaceme map was estimated for layer \(p)") }
                let name = WeightNames.projection(.down, layer: p)
                out[name] = { try Self.folded(t, into: try store.tensor(name)) }
            case .layerMerge:
                for projection in Projection.allCases {
                    for name in [WeightNames.projection(projection, layer: p), WeightNames.projectionBias(projection, layer: p)]
                    where store.contains(name) {
                        let removed = run.map { name.replacingOccurrences(of: WeightNames.layerPrefix(p), with: WeightNames.layerPrefix($0)) }
                        out[name] = { try Self.merged(try store.tensor(name), removed.map { try store.tensor($0) }) }
                    }
                }
            }
        }
        return out
    }

    /// Tᵀ·W in Float64 for W (C, F) and T (C, C): the down-projection whose output is the old one's times T.
    static func folded(_ t: [Double], into w: Tensor) throws -> Tensor {
        let c = w.shape[0], f = w.count / c
        guard t.count == c * c else { throw PruneError("--replace", "a \(t.count)-entry map does not fit down_proj of shape \(w.shape)") }
        let out = Tensor(zeros: w.shape)
        var row = [Double](repeating: 0, count: f)
        for i in 0..<c {
            for j in 0..<f { row[j] = 0 }
            for k in 0..<c {
                let tki = t[k * c + i]
                if tki != 0 { for j in 0..<f { row[j] += tki * Double(w.data[k * f + j]) } }
            }
            for j in 0..<f { out.data[i * f + j] = Float(row[j]) }
        }
        return out
    }

    /// θ_p + Σ_k (θ_k − θ_p), elementwise in Float64.
    static func merged(_ kept: Tensor, _ removed: [Tensor]) throws -> Tensor {
        let out = Tensor(zeros: kept.shape)
        for r in removed where r.shape != kept.shape {
            throw PruneError("--replace", "laco merges tensors of one shape, not \(r.shape) into \(kept.shape)")
        }
        for i in 0..<kept.count {
            let base = Double(kept.data[i])
            out.data[i] = Float(removed.reduce(base) { $0 + Double($1.data[i]) - base })
        }
        return out
    }
}
