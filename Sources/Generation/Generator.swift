// Autoregressive sampling with a KV cache: greedy at temperature 0, else temperature + nucleus (top-p)
// sampling from a seeded generator so that runs repeat.
import Foundation
import Llama
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
    /// Prefill and decode times of the last `generate`.
    public private(set) var timing = DecodeTiming()
    private var distribution = TokenDistribution()
    public init(model: LlamaModel) { self.model = model }

    /// New token ids after `prompt`; `onToken` sees each as it is produced. Logits that are not finite (a
    /// model whose weights overflow) end generation with an error instead of a token picked from NaN.
    /// Greedy decoding keeps only the head's argmax; sampling writes the logits.
    public func generate(prompt: [Int32], options: SamplingOptions, onToken: (Int32) -> Void = { _ in }) throws -> [Int32] {
        precondition(!prompt.isEmpty, "empty prompt")
        timing = DecodeTiming()
        let start = Date()
        let session = DecodeSession(model: model, capacity: prompt.count + options.maxTokens, rows: 1)
        var rng = SeededGenerator(seed: options.seed)
        var out: [Int32] = []
        out.reserveCapacity(options.maxTokens)
        let h = Tensor(zeros: [1, model.config.hiddenSize])
        session.prefill(prompt, last: h.data)
        var stepsStart: Date? = nil
        while out.count < options.maxTokens {
            let next = try pick(session, h.data, options: options, rng: &rng, produced: out.count)
            if out.isEmpty {
                timing.prefillTokens = prompt.count
                timing.prefillSeconds = Date().timeIntervalSince(start)
            }
            if options.stopTokens.contains(next) { break }
            out.append(next)
            onToken(next)
            if out.count == options.maxTokens { break }
            if stepsStart == nil { stepsStart = Date() }
            model.embed(next, into: h.data)
            session.run(0..<model.layers.count, on: h.data, rows: 1, at: session.cache.length)
            timing.decodeTokens += 1
        }
        if let stepsStart { timing.decodeSeconds = Date().timeIntervalSince(stepsStart) }
        return out
    }

    /// The next token from the last layer's output h (C): the head's argmax when greedy, else a sample.
    private func pick(_ session: DecodeSession, _ h: UnsafePointer<Float>, options: SamplingOptions, rng: inout SeededGenerator,
                      produced: Int) throws -> Int32 {
        let V = model.config.vocabSize
        if options.temperature <= 0 {
            let best = session.argmax(of: h, rows: 1)[0]
            guard best.firstNonFinite != nil else { return Int32(best.index) }
        }
        let logits = session.logits(of: h, rows: 1)
        if let bad = (0..<V).first(where: { !logits[$0].isFinite }) {
            throw PruneError("", "the model gives a non-finite logit (\(logits[bad]) for token \(bad)) after \(produced) generated tokens")
        }
        distribution.set(logits: logits, count: V, temperature: options.temperature, topP: options.topP)
        return distribution.draw(using: &rng)
    }
}
