// Self-speculative decoding (LayerSkip, Elhoushi et al., 2024; Draft & Verify, Zhang et al., 2023): a cheaper
// model made of the model's own layers drafts K tokens, then the full model checks all of them in one batched
// pass. Greedy: it keeps the longest prefix it agrees with plus its own next token, so the output is the full
// model's greedy output. Sampling (temperature > 0, top-p; Leviathan et al. 2023, Chen et al. 2023): the draft
// samples x from its q, the verifier accepts it with probability min(1, p(x)/q(x)), else draws from
// norm(max(0, p − q)) and stops; when all K are accepted it draws one more from p. The output is then
// distributed as the full model's sampling (p being exactly what plain sampling draws from, TokenDistribution).
// Only the number of full passes shrinks. The draft may score a reduced vocabulary (DraftVocabulary) and may
// stop before K when its top probability falls below a threshold (a dynamic draft length); neither changes the
// output, since verification keeps the full head.
//   draft `exit:E`   layers 0…E−1, then the shared final norm + lm_head (an early exit);
//   draft `skip:S`   every layer except those in S (Draft & Verify).
// Let F be the first layer the draft does not compute as the full model does (E, or min S). Layers below F are
// the same computation in draft and verifier, so the verifier reuses the draft's KV entries for them and the
// stream entering layer F that the draft saw; it computes layers < F only for the one position the draft never
// fed (its last token), then layers F…L−1 on all K+1 positions in one pass. Rejected positions are rolled back
// in every layer's cache.
// Exactness by construction: a verification row goes through the same kernels as a one-token step (matrix–
// vector products, query-by-query attention, per-row norms and activations; DecodeSession), each of which
// computes a row as it would alone, so the verifier's logits of each position equal plain decoding's bit for bit.
// K + 1 is at most MatrixVector.maxRows.
// Dimension glossary: K draft tokens, P stored positions, C model dim, V vocab, L layers.
import Foundation
import Llama
import Support
import Tensor

/// Which of the model's own layers draft.
public enum DraftLayers: Equatable, Sendable, CustomStringConvertible {
    /// Layers 0…E−1 and the final norm + lm_head (LayerSkip's early exit), 1 ≤ E < L.
    case exit(Int)
    /// Every layer except these (Draft & Verify), a non-empty proper subset of 0…L−1.
    case skip(Set<Int>)

    public var description: String {
        switch self {
        case .exit(let e): "exit:\(e)"
        case .skip(let s): "skip:" + s.sorted().map(String.init).joined(separator: ",")
        }
    }

    /// Why these layers cannot draft for an L-layer model, or nil when they can.
    public func problem(layers L: Int) -> String? {
        switch self {
        case .exit(let e): return (1..<L).contains(e) ? nil : "exit layer \(e) must be in 1…\(L - 1)"
        case .skip(let s):
            if s.isEmpty { return "no layer to skip" }
            if let bad = s.first(where: { !(0..<L).contains($0) }) { return "layer \(bad) outside 0…\(L - 1)" }
            return s.count < L ? nil : "the draft must keep at least one layer"
        }
    }

    /// The layers the draft runs, in order.
    func draftLayers(_ L: Int) -> [Int] {
        switch self {
        case .exit(let e): Array(0..<e)
        case .skip(let s): (0..<L).filter { !s.contains($0) }
        }
    }

    /// F: layers below it are computed by the draft exactly as by the full model.
    func firstDivergentLayer(_ L: Int) -> Int {
        switch self {
        case .exit(let e): e
        case .skip(let s): s.min()!
        }
    }
}

/// What one speculative generation did.
public struct SpeculationStatistics: Sendable {
    /// Tokens the draft proposed.
    public var drafted = 0
    /// Drafted tokens the full model agreed with.
    public var accepted = 0
    /// Full-model verification passes.
    public var verifications = 0
    /// Tokens produced (as returned).
    public var generated = 0
    /// Wall-clock seconds of the whole generation, prompt included.
    public var seconds = 0.0

    public init() {}

    /// accepted / drafted.
    public var acceptanceRate: Double { drafted > 0 ? Double(accepted) / Double(drafted) : 0 }
    /// Drafted tokens accepted per verification pass.
    public var meanAccepted: Double { verifications > 0 ? Double(accepted) / Double(verifications) : 0 }
    public var tokensPerSecond: Double { seconds > 0 ? Double(generated) / seconds : 0 }
}

/// Decoding with the model's own layers as the draft model: greedy (the full model's greedy output) or sampling
/// (the full model's sampling distribution).
public final class SelfSpeculativeGenerator {
    public let model: LlamaModel
    public let draft: DraftLayers
    /// K, most tokens drafted per verification.
    public let draftTokens: Int
    /// The tokens the draft's head scores (nil: the whole vocabulary).
    public let draftVocabulary: DraftVocabulary?
    /// Drafting stops after a token whose draft probability is below this (nil: always K).
    public let draftStop: Double?
    /// Prefill and decode times of the last `generate`.
    public private(set) var timing = DecodeTiming()
    /// Counters of the last `generate`.
    public private(set) var statistics = SpeculationStatistics()

    /// Most tokens drafted per verification: a verification pass takes K+1 ≤ MatrixVector.maxRows rows.
    public static let maxDraftTokens = MatrixVector.maxRows - 1

    public init(model: LlamaModel, draft: DraftLayers, draftTokens: Int = 4, draftVocabulary: DraftVocabulary? = nil,
                draftStop: Double? = nil) {
        if let problem = draft.problem(layers: model.layers.count) { preconditionFailure(problem) }
        precondition(draftTokens >= 1 && draftTokens <= Self.maxDraftTokens,
                     "draft tokens \(draftTokens) must be in 1…\(Self.maxDraftTokens)")
        precondition(draftStop.map { $0 > 0 && $0 < 1 } ?? true, "a draft stop probability in (0, 1)")
        self.model = model
        self.draft = draft
        self.draftTokens = draftTokens
        self.draftVocabulary = draftVocabulary
        self.draftStop = draftStop
    }

    /// The full model's continuation of `prompt` (greedy at temperature 0, else sampled at options.temperature
    /// and options.topP from options.seed), at most options.maxTokens ids, stopping before a stop token; `onToken`
    /// sees each id as it is accepted. Throws when the full model's logits are not finite (sampling only; greedy
    /// takes the finite argmax as plain greedy does).
    public func generate(prompt: [Int32], options: SamplingOptions, onToken: (Int32) -> Void = { _ in }) throws -> [Int32] {
        precondition(!prompt.isEmpty, "empty prompt")
        let start = Date()
        statistics = SpeculationStatistics()
        timing = DecodeTiming()
        defer {
            statistics.seconds = Date().timeIntervalSince(start)
            timing.decodeSeconds = statistics.seconds - timing.prefillSeconds
            timing.decodeTokens = max(0, statistics.generated - 1)
        }
        let L = model.layers.count, C = model.config.hiddenSize, V = model.config.vocabSize, K = draftTokens
        let sampling = options.temperature > 0
        let draftLayers = draft.draftLayers(L), F = draft.firstDivergentLayer(L)
        let session = DecodeSession(model: model, capacity: prompt.count + options.maxTokens + K + 1, rows: K + 1)
        let cache = session.cache
        let h = Tensor(zeros: [1, C])                 // the draft's stream, one token
        let entering = Tensor(zeros: [K + 1, C])      // stream entering layer F per verified position
        let below = draftLayers.prefix { $0 < F }, draftAbove = draftLayers.drop { $0 < F }
        var rng = SeededGenerator(seed: options.seed)
        var drafted: [Int32] = []
        drafted.reserveCapacity(K)
        var q = [TokenDistribution](repeating: TokenDistribution(), count: K)   // the draft's, per drafted token
        var p = TokenDistribution()
        var pDense = DenseProbabilities(vocabulary: V), qDense = DenseProbabilities(vocabulary: V)

        /// The full model's token from the last layer's output of one position (logits at `row` of `logits` when
        /// sampling): what plain decoding picks or draws there.
        func full(_ logits: UnsafePointer<Float>) throws -> TokenDistribution {
            if let bad = (0..<V).first(where: { !logits[$0].isFinite }) {
                throw PruneError("", "the model gives a non-finite logit (\(logits[bad]) for token \(bad)) after \(statistics.generated) generated tokens")
            }
            p.set(logits: logits, count: V, temperature: options.temperature, topP: options.topP)
            return p
        }

        // The prompt through the full model, exactly as plain decoding does.
        var out: [Int32] = []
        out.reserveCapacity(options.maxTokens)
        session.prefill(prompt, last: h.data)
        var pending = sampling ? try full(session.logits(of: h.data, rows: 1)).draw(using: &rng)
                               : Int32(session.argmax(of: h.data, rows: 1)[0].index)
        timing.prefillTokens = prompt.count
        timing.prefillSeconds = Date().timeIntervalSince(start)
        /// Appends a produced token; false when generation ends (stop token or budget).
        func emit(_ id: Int32) -> Bool {
            if options.stopTokens.contains(id) || out.count >= options.maxTokens { return false }
            out.append(id)
            onToken(id)
            statistics.generated = out.count
            return out.count < options.maxTokens
        }
        /// The draft's token from its stream h, and whether drafting goes on after it.
        func draftToken(_ i: Int) -> (Int32, Bool) {
            let head = draftVocabulary?.head, ids = draftVocabulary?.ids
            if !sampling && draftStop == nil {
                let index = session.argmax(of: h.data, rows: 1, head: head)[0].index
                return (ids.map { $0[index] } ?? Int32(index), true)
            }
            let logits = session.logits(of: h.data, rows: 1, head: head), n = head?.rows ?? V
            if sampling {
                q[i].set(logits: logits, count: n, temperature: options.temperature, topP: options.topP, ids: ids)
                return (q[i].draw(using: &rng), draftStop.map { q[i].top >= $0 } ?? true)
            }
            let (lse, index) = Kernels.logSumExp(logits, count: n)
            let top = exp(Double(logits[index]) - lse)
            return (ids.map { $0[index] } ?? Int32(index), draftStop.map { top >= $0 } ?? true)
        }
        guard emit(pending) else { return out }
        while true {
            let p0 = cache.length   // positions of every layer; `pending` sits at p0
            // Draft: at most what the budget still takes (the verifier adds one token of its own).
            let budget = min(K, options.maxTokens - out.count - 1)
            drafted.removeAll(keepingCapacity: true)
            var token = pending
            while drafted.count < budget {
                model.embed(token, into: h.data)
                session.run(below, on: h.data, rows: 1, at: p0 + drafted.count)
                (entering.data + drafted.count * C).update(from: h.data, count: C)
                for l in draftAbove { session.run(CollectionOfOne(l), on: h.data, rows: 1, at: p0 + drafted.count) }
                let (t, goOn) = draftToken(drafted.count)
                token = t
                drafted.append(token)
                if options.stopTokens.contains(token) || !goOn { break }
            }
            // Verify: layers < F for the last drafted token only, then layers F…L−1 on every position.
            let k = drafted.count
            model.embed(k == 0 ? pending : drafted[k - 1], into: entering.data + k * C)
            session.run(below, on: entering.data + k * C, rows: 1, at: p0 + k)
            for l in F..<L { cache.truncate(layer: l, to: p0) }   // draft entries computed on another stream
            session.run(F..<L, on: entering.data, rows: k + 1, at: p0)
            var accepted = 0
            let next: Int32
            if sampling {
                let logits = session.logits(of: entering.data, rows: k + 1)
                var resampled: Int32? = nil
                while accepted < k {
                    pDense.set(try full(logits + accepted * V))
                    qDense.set(q[accepted])
                    let x = drafted[accepted]
                    if Double.random(in: 0..<1, using: &rng) < min(1, pDense[x] / qDense[x]) { accepted += 1; continue }
                    resampled = pDense.drawResidual(minus: qDense, using: &rng) ?? p.draw(using: &rng)
                    break
                }
                next = try resampled ?? full(logits + k * V).draw(using: &rng)
            } else {
                let verdict = session.argmax(of: entering.data, rows: k + 1)
                while accepted < k && drafted[accepted] == Int32(verdict[accepted].index) { accepted += 1 }
                next = Int32(verdict[accepted].index)
            }
            statistics.drafted += k
            statistics.accepted += accepted
            statistics.verifications += 1
            cache.truncate(to: p0 + accepted + 1)
            var going = true
            for i in 0..<accepted where going { going = emit(drafted[i]) }
            if !going || !emit(next) { break }
            pending = next
        }
        return out
    }
}
