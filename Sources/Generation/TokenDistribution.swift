// The distribution a sampler draws the next token from: softmax(logits / temperature), cut to the nucleus (the
// most likely tokens whose mass first reaches top-p, the token that crosses it included, as transformers' top-p
// warper keeps it) and renormalised. Plain sampling draws from it; speculative sampling compares the draft's and
// the full model's (accept x with min(1, p(x)/q(x)), else draw from norm(max(0, p − q))), so both must be
// exactly this one distribution.
// Dimension glossary: V scored tokens (the vocabulary, or a draft's reduced one).
import Foundation
import Llama
import Support

/// The kept tokens of one position and their probabilities (summing to 1), most likely first.
public struct TokenDistribution {
    public private(set) var ids: [Int32] = []
    public private(set) var probabilities: [Double] = []
    private var order: [Int] = []
    private var weights: [Double] = []

    public init() {}

    /// The distribution of logits (V) at `temperature` > 0 and `topP` ∈ (0, 1]; token i of the logits is id
    /// `ids?[i] ?? i`. Reuses its storage: one value per position costs no allocation after the first.
    public mutating func set(logits: UnsafePointer<Float>, count v: Int, temperature: Double, topP: Double,
                             ids map: [Int32]? = nil) {
        precondition(temperature > 0 && topP > 0 && topP <= 1, "temperature \(temperature), top-p \(topP)")
        var mx = -Double.infinity
        for i in 0..<v { mx = max(mx, Double(logits[i])) }
        weights.removeAll(keepingCapacity: true)
        var sum = 0.0
        for i in 0..<v {
            let w = exp((Double(logits[i]) - mx) / temperature)
            weights.append(w)
            sum += w
        }
        order.removeAll(keepingCapacity: true)
        order.append(contentsOf: 0..<v)
        // Most likely first, the lower index first among equals (a total order: the same nucleus on every run).
        if topP < 1 { order.sort { weights[$0] > weights[$1] || (weights[$0] == weights[$1] && $0 < $1) } }
        ids.removeAll(keepingCapacity: true)
        probabilities.removeAll(keepingCapacity: true)
        var mass = 0.0
        for i in order {
            let p = weights[i] / sum
            if p == 0 { continue }
            ids.append(map.map { $0[i] } ?? Int32(i))
            probabilities.append(p)
            mass += p
            if topP < 1 && mass >= topP { break }
        }
        for j in probabilities.indices { probabilities[j] /= mass }
    }

    /// The most likely token's probability.
    public var top: Double { probabilities.max() ?? 0 }

    /// A token drawn from the distribution.
    public func draw(using rng: inout SeededGenerator) -> Int32 {
        var r = Double.random(in: 0..<1, using: &rng)
        for (j, p) in probabilities.enumerated() {
            r -= p
            if r < 0 { return ids[j] }
        }
        return ids.last ?? 0   // rounding left r ≥ 0 past the last kept token
    }
}

/// Dense probabilities over the whole vocabulary, for the speculative acceptance rule: p and q of one position
/// looked up by id, and the residual norm(max(0, p − q)). Cleared entry by entry after use (no V-sized reset).
struct DenseProbabilities {
    private var values: [Double]
    private var touched: [Int32] = []

    init(vocabulary v: Int) { values = [Double](repeating: 0, count: v) }

    subscript(id: Int32) -> Double { values[Int(id)] }

    mutating func set(_ d: TokenDistribution) {
        clear()
        for (id, p) in zip(d.ids, d.probabilities) { values[Int(id)] = p; touched.append(id) }
    }

    mutating func clear() {
        for id in touched { values[Int(id)] = 0 }
        touched.removeAll(keepingCapacity: true)
    }

    /// A token from norm(max(0, p − q)), p being self and q `draft`; nil when p ≤ q everywhere (then p = q and
    /// the draft's token was accepted with probability 1, so this is never asked).
    func drawResidual(minus draft: DenseProbabilities, using rng: inout SeededGenerator) -> Int32? {
        var mass = 0.0
        for id in touched { mass += max(0, values[Int(id)] - draft[id]) }
        guard mass > 0 else { return nil }
        var r = Double.random(in: 0..<mass, using: &rng)
        var last: Int32? = nil
        for id in touched {
            let w = max(0, values[Int(id)] - draft[id])
            guard w > 0 else { continue }
            last = id
            r -= w
            if r < 0 { return id }
        }
        return last
    }
}
