// The logit lens (nostalgebraist 2020): each layer's residual stream read through the final norm and lm_head as if
// the model stopped there. Over calibration text, per exit: the entropy of its next-token distribution, how often
// its top token is the last layer's, and the mean norm of the stream itself; for one prompt, the top token of
// every exit at every position and its probability (the picture of where a prediction forms). A LayerSkip-trained
// model should settle earlier, with lower entropy at its early exits, than its base.
// Dimension glossary: T tokens, C model dim, V vocab, L layers (exit l = after l layers, l = 1…L).
import Foundation
import Llama
import Tensor

/// Per-exit statistics over calibration text, and one prompt's picture.
public struct LogitLens: Codable, Equatable, Sendable {
    /// Index l−1: mean entropy (nats) of exit l's next-token distribution.
    public var entropy: [Double]
    /// Index l−1: fraction of positions whose exit-l top token is the last layer's.
    public var agreement: [Double]
    /// Index l: mean L2 norm of the residual stream after l layers (0: the embeddings), l = 0…L.
    public var hiddenNorm: [Double]
    /// Positions measured.
    public var positions: Int

    /// One prompt: per exit and position the top token and its probability.
    public struct Picture: Codable, Equatable, Sendable {
        /// The prompt's tokens as vocabulary pieces.
        public var tokens: [String]
        /// [l−1][t]: exit l's top token at position t (its id and piece) and its probability.
        public var topIDs: [[Int]]
        public var topPieces: [[String]]
        public var probability: [[Double]]
        enum CodingKeys: String, CodingKey { case tokens, topIDs = "top_ids", topPieces = "top_pieces", probability }
    }
    public var picture: Picture?

    enum CodingKeys: String, CodingKey { case entropy, agreement, hiddenNorm = "hidden_norm", positions, picture }

    /// Measures `model` over `samples` (each a token sequence) and draws `prompt`'s picture (pieces from `pieces`).
    public static func measure(model: LlamaModel, samples: [[Int32]], prompt: [Int32]?, pieces: ([Int32]) -> [String]) -> LogitLens {
        precondition(!samples.isEmpty && samples.allSatisfy { !$0.isEmpty }, "samples to look through")
        let L = model.layers.count
        var entropy = [Double](repeating: 0, count: L), agree = [Int](repeating: 0, count: L)
        var norms = [Double](repeating: 0, count: L + 1), positions = 0
        for s in samples {
            let exits = Self.exits(model, s)
            positions += s.count
            for t in 0..<s.count {
                let last = exits.top[L - 1][t]
                for l in 0..<L {
                    entropy[l] += exits.entropy[l][t]
                    if exits.top[l][t] == last { agree[l] += 1 }
                }
                for l in 0...L { norms[l] += exits.norm[l][t] }
            }
        }
        var picture: Picture?
        if let prompt, !prompt.isEmpty {
            let exits = Self.exits(model, prompt)
            picture = Picture(tokens: pieces(prompt), topIDs: exits.top, topPieces: exits.top.map { pieces($0.map { Int32($0) }) },
                              probability: exits.probability)
        }
        let n = Double(positions)
        return LogitLens(entropy: entropy.map { $0 / n }, agreement: agree.map { Double($0) / n }, hiddenNorm: norms.map { $0 / n },
                         positions: positions, picture: picture)
    }

    /// One sequence through the model: per exit l−1 and position t the top token, its probability and the entropy;
    /// per stream l = 0…L and position the norm.
    static func exits(_ model: LlamaModel, _ ids: [Int32]) -> (top: [[Int]], probability: [[Double]], entropy: [[Double]], norm: [[Double]]) {
        let L = model.layers.count, C = model.config.hiddenSize, V = model.config.vocabSize, T = ids.count
        let store = HiddenStateStore(stateCount: L + 1, width: C)
        store.reserve(rows: T)
        _ = model.forward(tokens: ids, batch: 1, length: T) { l, h in store.store(layer: l, from: h, rows: T) }
        let hidden = UnsafeMutablePointer<Float>.allocate(capacity: T * C)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: T * V)
        let softmax = UnsafeMutablePointer<Float>.allocate(capacity: V * model.parallelism.threads)
        defer {
            hidden.deallocate()
            logits.deallocate()
            softmax.deallocate()
        }
        var top = [[Int]](repeating: [], count: L), probability = [[Double]](repeating: [], count: L)
        var entropy = [[Double]](repeating: [], count: L), norm = [[Double]](repeating: [], count: L + 1)
        for l in 0...L {
            store.gather(layer: l, rows: 0, count: T, into: hidden)
            norm[l] = (0..<T).map { t in sqrt((0..<C).reduce(0.0) { $0 + Double(hidden[t * C + $1]) * Double(hidden[t * C + $1]) }) }
            guard l >= 1 else { continue }
            model.logits(fromHidden: hidden, rows: T, into: logits)
            var best = [Int](repeating: 0, count: T), p = [Double](repeating: 0, count: T), h = [Double](repeating: 0, count: T)
            best.withUnsafeMutableBufferPointer { best in
                p.withUnsafeMutableBufferPointer { p in
                    h.withUnsafeMutableBufferPointer { h in
                        model.parallelism.workers(T) { worker, range in
                            let q = softmax + worker * V
                            for t in range {
                                let z = logits + t * V
                                let (lse, argmax) = Kernels.logSumExp(z, count: V)
                                // (softmax − onehot(argmax)) · z + z[argmax] = Σ p z; the entropy is lse − Σ p z.
                                _ = Kernels.crossEntropyVectorized(z, vocab: V, target: Int32(argmax), dLogits: q, gradScale: 1)
                                var dot: Float = 0
                                Kernels.rowDot(q, lda: V, z, ldb: V, rows: 1, cols: V, into: &dot)
                                best[t] = argmax
                                p[t] = exp(Double(z[argmax]) - lse)
                                h[t] = max(0, lse - (Double(dot) + Double(z[argmax])))
                            }
                        }
                    }
                }
            }
            top[l - 1] = best
            probability[l - 1] = p
            entropy[l - 1] = h
        }
        return (top, probability, entropy, norm)
    }
}
