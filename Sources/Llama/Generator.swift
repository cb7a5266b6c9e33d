// Autoregressive sampling with a KV cache: greedy at temperature 0, else temperature + nucleus (top-p)
// sampling from a seeded generator so that runs repeat.
import Foundation
import Support
import Tensor

/// Sampling settings.
public struct SamplingOptions {
    public var maxTokens: Int = 64
    /// 0 = greedy.
    public var temperature: Double = 0
    /// Nucleus mass kept (1 = all).
    public var topP: Double = 1
    public var seed: UInt64 = 0
    /// Generation stops at any of these ids.
    public var stopTokens: Set<Int32> = []
    public init() {}
}

/// Generates continuations of a prompt.
public final class Generator {
    public let model: LlamaModel
    public init(model: LlamaModel) { self.model = model }

    /// New token ids after `prompt`; `onToken` sees each as it is produced. Logits that are not finite (a
    /// model whose weights overflow) end generation with an error instead of a token picked from NaN.
    public func generate(prompt: [Int32], options: SamplingOptions, onToken: (Int32) -> Void = { _ in }) throws -> [Int32] {
        precondition(!prompt.isEmpty, "empty prompt")
        let capacity = prompt.count + options.maxTokens
        let cache = KVCache(config: model.config, batch: 1, capacity: capacity)
        var rng = SeededGenerator(seed: options.seed)
        var out: [Int32] = []
        var input = prompt
        let V = model.config.vocabSize
        while out.count < options.maxTokens {
            let output = model.forward(tokens: input, batch: 1, length: input.count, cache: cache)
            let logits = output.logits
            let last = logits.data + (input.count - 1) * V
            if let bad = (0..<V).first(where: { !last[$0].isFinite }) {
                throw PruneError("", "the model gives a non-finite logit (\(last[bad]) for token \(bad)) after \(out.count) generated tokens")
            }
            let next = withExtendedLifetime(logits) { sample(last, vocab: V, options: options, rng: &rng) }
            if options.stopTokens.contains(next) { break }
            out.append(next)
            onToken(next)
            input = [next]
        }
        return out
    }

    func sample(_ logits: UnsafePointer<Float>, vocab v: Int, options: SamplingOptions, rng: inout SeededGenerator) -> Int32 {
        if options.temperature <= 0 { return Int32(Kernels.logSumExp(logits, count: v).argmax) }
        var mx = -Double.infinity
        for i in 0..<v { mx = max(mx, Double(logits[i])) }
        var probs = (0..<v).map { (i: $0, p: exp((Double(logits[$0]) - mx) / options.temperature)) }
        let sum = probs.reduce(0) { $0 + $1.p }
        probs.sort { $0.p > $1.p }
        var kept: [(i: Int, p: Double)] = []
        var mass = 0.0
        for e in probs {
            kept.append((e.i, e.p / sum))
            mass += e.p / sum
            if mass >= options.topP { break }
        }
        var r = Double.random(in: 0..<mass, using: &rng)
        for e in kept {
            r -= e.p
            if r < 0 { return Int32(e.i) }
        }
        return Int32(kept.last?.i ?? 0)
    }
}
