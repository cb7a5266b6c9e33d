// Dynamic early exit (CALM-style; the LayerSkip proposal's idea), APPROXIMATE: each new token leaves the layer
// stack at the first checked layer whose exit (final norm + lm_head on that layer's output) is confident, i.e.
// its top-1 probability is ≥ the threshold; the layers it skipped get keys and values computed from the exit
// hidden state, so later tokens can attend to it. The output is NOT the full model's: the statistics say how many
// layers each token used, and comparing with plain greedy decoding gives the quality cost.
// Each check costs one lm_head on one row (V·C multiply-adds, a fifth of SmolLM2-135M's per-token work), so
// `checkEvery` spaces the checks out.
// Dimension glossary: C model dim, V vocab, L layers.
import Foundation
import Llama
import Tensor

/// What one dynamic-early-exit generation did.
public struct EarlyExitStatistics: Sendable {
    /// Layers run per generated token (the prompt is always run in full).
    public var layersUsed: [Int] = []
    /// Tokens produced (as returned).
    public var generated = 0
    /// Wall-clock seconds, prompt included.
    public var seconds = 0.0
    public init() {}
    /// Mean layers per generated token.
    public var meanLayers: Double { layersUsed.isEmpty ? 0 : Double(layersUsed.reduce(0, +)) / Double(layersUsed.count) }
    public var tokensPerSecond: Double { seconds > 0 ? Double(generated) / seconds : 0 }
}

/// Greedy decoding that leaves the stack early when an exit is confident (approximate).
public final class EarlyExitGenerator {
    public let model: LlamaModel
    /// Top-1 probability at which a token leaves, e.g. 0.9.
    public let threshold: Double
    /// Exits checked: after layers minLayer−1, minLayer−1+checkEvery, … (1-based layer counts), below L.
    public let minLayer: Int
    public let checkEvery: Int
    /// Prefill and decode times of the last `generate`.
    public private(set) var timing = DecodeTiming()
    /// Counters of the last `generate`.
    public private(set) var statistics = EarlyExitStatistics()

    public init(model: LlamaModel, threshold: Double, minLayer: Int = 1, checkEvery: Int = 1) {
        precondition(threshold > 0 && threshold <= 1, "threshold \(threshold) outside (0, 1]")
        precondition(minLayer >= 1 && checkEvery >= 1, "minLayer \(minLayer), checkEvery \(checkEvery)")
        self.model = model
        self.threshold = threshold
        self.minLayer = minLayer
        self.checkEvery = checkEvery
    }

    /// Whether the token leaves after `count` layers (1…L−1).
    func checks(afterLayers count: Int) -> Bool { count >= minLayer && (count - minLayer) % checkEvery == 0 }

    /// Greedy continuation with early exits (temperature ignored), at most options.maxTokens ids, stopping
    /// before a stop token.
    public func generate(prompt: [Int32], options: SamplingOptions, onToken: (Int32) -> Void = { _ in }) -> [Int32] {
        precondition(!prompt.isEmpty, "empty prompt")
        let start = Date()
        statistics = EarlyExitStatistics()
        timing = DecodeTiming()
        defer {
            statistics.seconds = Date().timeIntervalSince(start)
            timing.decodeSeconds = statistics.seconds - timing.prefillSeconds
            timing.decodeTokens = max(0, statistics.generated - 1)
        }
        let L = model.layers.count, C = model.config.hiddenSize
        let session = DecodeSession(model: model, capacity: prompt.count + options.maxTokens, rows: 1)
        let h = Tensor(zeros: [1, C])
        session.prefill(prompt, last: h.data)
        var token = Int32(session.argmax(of: h.data, rows: 1)[0].index)
        timing.prefillTokens = prompt.count
        timing.prefillSeconds = Date().timeIntervalSince(start)
        var out: [Int32] = []
        while true {
            if options.stopTokens.contains(token) || out.count >= options.maxTokens { break }
            out.append(token)
            onToken(token)
            if out.count >= options.maxTokens { break }
            // The next token: layers one at a time until an exit is confident.
            let p = session.cache.length
            model.embed(token, into: h.data)
            var used = L
            for l in 0..<L {
                session.run(CollectionOfOne(l), on: h.data, rows: 1, at: p)
                if l < L - 1 && checks(afterLayers: l + 1) {
                    let logits = session.logits(of: h.data, rows: 1)
                    let (lse, top) = Kernels.logSumExp(logits, count: model.config.vocabSize)
                    if exp(Double(logits[top]) - lse) >= threshold {
                        used = l + 1
                        token = Int32(top)
                        break
                    }
                }
            }
            if used == L {
                token = Int32(session.argmax(of: h.data, rows: 1)[0].index)
            } else {
                // The skipped layers attend to this token through its exit state.
                for l in used..<L { session.storeKeysValues(l, from: h.data, rows: 1, at: p) }
            }
            statistics.layersUsed.append(used)
        }
        statistics.generated = out.count
        return out
    }
}
