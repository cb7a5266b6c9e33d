// `--speculate exit:auto`: the exit E and draft length K that should decode fastest, from how often each exit's
// top-1 token equals the full model's (α_E, measured on calibration text) and what decoding's pieces cost here
// (DecodeCost). Greedy self-speculation with a per-token acceptance α emits 1 + α + … + α^K = (1 − α^(K+1)) / (1 − α)
// tokens per pass (the accepted prefix and the verifier's own token), and a pass costs K draft tokens (E layers
// and the draft head each), the last drafted token through layers below E, and one verification of K+1 rows
// through layers E…L−1 and the full head. The expected speed-up is that rate over plain decoding's. Independent
// acceptances make it an estimate (acceptances come in runs), good for ranking the settings.
// Dimension glossary: L layers, E exit (draft layers 0…E−1), K drafted tokens.
import Foundation
import Llama

/// One (E, K) setting and its predicted speed-up over plain greedy.
public struct SpeculationChoice: Sendable, Equatable {
    public var exit: Int
    public var draftTokens: Int
    /// α_E as measured.
    public var agreement: Double
    /// Expected tokens per verification pass.
    public var tokensPerPass: Double
    /// Expected tokens/s over plain greedy's.
    public var predictedSpeedup: Double

    /// The settings for exits 1…L−1 and K = 1…maxDraftTokens, fastest first (ties: the smaller E, then K).
    /// agreement[l−1] is exit l's top-1 agreement, l = 1…L (the last is the full model's, 1).
    public static func ranked(agreement: [Double], cost: DecodeCost, maxDraftTokens: Int) -> [SpeculationChoice] {
        let L = agreement.count
        let maxK = min(maxDraftTokens, cost.layer.count - 1)
        guard L >= 2, maxK >= 1 else { return [] }
        let plain = cost.step(layers: L)
        var out: [SpeculationChoice] = []
        for e in 1..<L {
            let a = min(max(agreement[e - 1], 0), 0.999_999)
            for k in 1...maxK {
                let tokens = (1 - pow(a, Double(k + 1))) / (1 - a)
                let draft = Double(k) * (Double(e) * cost.layer[0] + cost.draftHead)
                let verify = Double(e) * cost.layer[0] + Double(L - e) * cost.layer[k] + cost.head[k]
                out.append(SpeculationChoice(exit: e, draftTokens: k, agreement: agreement[e - 1], tokensPerPass: tokens,
                                             predictedSpeedup: tokens / (draft + verify) * plain))
            }
        }
        return out.sorted {
            $0.predictedSpeedup != $1.predictedSpeedup ? $0.predictedSpeedup > $1.predictedSpeedup
                : ($0.exit, $0.draftTokens) < ($1.exit, $1.draftTokens)
        }
    }
}
