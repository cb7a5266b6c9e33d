// What self-speculation needs to know about a model's domain, measured on its data and stored with the model as
// speculation.json (the layerskip recipe writes it into OUT/final; transformers ignores the file):
//   - each exit's top-1 agreement with the full model (`analyze --early-exit` on held-out text), for exit:auto;
//   - the domain's token frequencies, ranked, for a reduced draft vocabulary (FR-Spec) and the size to use.
// `prune generate --speculate` reads it when present; --calibration DATA and --draft-vocab-from DATA measure the
// same two things on the spot instead.
import Analysis
import Checkpoint
import Data
import Foundation
import Generation
import Llama
import Support
import Tensor
import Tokenizers

/// speculation.json: exit agreements and token frequencies of a model on its domain.
public struct SpeculationProfile: Codable, Equatable {
    public static let fileName = "speculation.json"

    /// Per-exit top-1 agreement and where it was measured.
    public struct ExitAgreement: Codable, Equatable {
        /// Index l−1: how often exit l's top-1 equals the full model's, l = 1…L.
        public var top1: [Double]
        /// The text it was measured on, and over how many positions.
        public var source: String
        public var positions: Int
    }

    /// Token frequencies of a corpus, most frequent first.
    public struct TokenFrequencies: Codable, Equatable {
        public var ids: [Int32]
        public var counts: [Int]
        /// The corpus and how many tokens it held.
        public var source: String
        public var tokens: Int
    }

    public var exitAgreement: ExitAgreement?
    public var tokenFrequencies: TokenFrequencies?
    /// The draft vocabulary size to use by default (with tokenFrequencies).
    public var draftVocabulary: Int?

    enum CodingKeys: String, CodingKey {
        case exitAgreement = "exit_top1_agreement", tokenFrequencies = "token_frequencies", draftVocabulary = "draft_vocabulary"
    }

    public init(exitAgreement: ExitAgreement? = nil, tokenFrequencies: TokenFrequencies? = nil, draftVocabulary: Int? = nil) {
        self.exitAgreement = exitAgreement
        self.tokenFrequencies = tokenFrequencies
        self.draftVocabulary = draftVocabulary
    }

    /// The profile stored in checkpoint `directory` (nil when it has none), checked against `config`.
    public static func stored(in directory: URL, config: LlamaConfig) throws -> SpeculationProfile? {
        let file = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        let profile = try JSONFile.read(SpeculationProfile.self, from: file, kind: "a speculation profile")
        if let problem = profile.problem(config: config) { throw PruneError(file: file, problem) }
        return profile
    }

    /// Why the profile cannot describe a model of `config`, or nil.
    public func problem(config c: LlamaConfig) -> String? {
        if let a = exitAgreement {
            if a.top1.count != c.numHiddenLayers {
                return "exit_top1_agreement has \(a.top1.count) exits; the model has \(c.numHiddenLayers) layers"
            }
            if let bad = a.top1.first(where: { !($0 >= 0 && $0 <= 1) }) { return "an exit agreement of \(bad), outside 0…1" }
            if a.positions < 1 { return "exit agreement over \(a.positions) positions" }
        }
        if let f = tokenFrequencies {
            if f.ids.isEmpty || f.ids.count != f.counts.count { return "token_frequencies needs as many ids as counts, at least one" }
            if let bad = f.ids.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
                return "token id \(bad) is outside the vocabulary (vocab_size \(c.vocabSize))"
            }
            if Set(f.ids).count != f.ids.count { return "token_frequencies lists an id twice" }
            if f.counts.contains(where: { $0 < 0 }) { return "a negative token count" }
        }
        if let n = draftVocabulary {
            guard tokenFrequencies != nil else { return "draft_vocabulary without token_frequencies" }
            if n < 1 || n >= c.vocabSize { return "draft_vocabulary \(n) must be in 1…\(c.vocabSize - 1)" }
        }
        return nil
    }

    /// Writes the profile into `directory` (atomically).
    public func write(into directory: URL) throws {
        try AtomicFile.write(try JSONEncoder.sorted.encode(self), to: directory.appendingPathComponent(Self.fileName))
    }

    /// Counts every token of `dataset` (text through `tokenizer` with its BOS rule), keeping the `keep` most
    /// frequent ids (ties: the lower id).
    public static func countTokens(of dataset: Dataset, tokenizer: Tokenizer?, vocabularySize V: Int,
                                   keep: Int = 32_768) throws -> TokenFrequencies {
        let sequences = try dataset.tokenized(with: tokenizer)
        try dataset.checkIDs(sequences, vocabularySize: V)
        var counts = [Int](repeating: 0, count: V)
        var total = 0
        for s in sequences {
            for t in s { counts[Int(t)] += 1 }
            total += s.count
        }
        guard total > 0 else { throw PruneError(file: dataset.url, "holds no tokens to count") }
        let ranked = counts.indices.filter { counts[$0] > 0 }
            .sorted { counts[$0] > counts[$1] || (counts[$0] == counts[$1] && $0 < $1) }.prefix(keep)
        return TokenFrequencies(ids: ranked.map { Int32($0) }, counts: ranked.map { counts[$0] }, source: dataset.url.path,
                                tokens: total)
    }

    /// Each exit's top-1 agreement with the full model along the model's own greedy continuation of `prompt`
    /// (`tokens` one-token steps), each exit scored through `draft`'s head when there is one (what a draft would
    /// propose there). Closer to what verification accepts than agreement on given text, which the model would
    /// not have written (exit 2 of SmolLM2: 0.07 on KJV text, 0.26 of drafts accepted): one decoding step per token
    /// plus L − 1 heads (cheap through a draft head; about three steps a token through Llama-3.2-1B's full head).
    /// The continuation ends where generation would: at the first of `stopTokens` the model chooses.
    public static func measureExitsOnContinuation(model: LlamaModel, prompt: [Int32], tokens: Int, draft: DraftVocabulary?,
                                                  stopTokens: Set<Int32> = [], source: String) -> ExitAgreement {
        let L = model.layers.count, C = model.config.hiddenSize
        let n = max(1, min(tokens, model.config.maxPositionEmbeddings - prompt.count))
        let session = DecodeSession(model: model, capacity: prompt.count + n, rows: 1)
        let x = Tensor(zeros: [1, C])
        session.prefill(prompt, last: x.data)
        var next = Int32(session.argmax(of: x.data, rows: 1)[0].index)
        var agreeing = [Int](repeating: 0, count: L)
        var exits = [Int32](repeating: 0, count: L)
        var measured = 0
        for step in 0..<n {
            if stopTokens.contains(next) { break }
            model.embed(next, into: x.data)
            let p = prompt.count + step
            for l in 0..<L {
                session.run(l..<(l + 1), on: x.data, rows: 1, at: p)
                guard l < L - 1 else { break }
                let best = session.argmax(of: x.data, rows: 1, head: draft?.head)[0].index
                exits[l] = draft.map { $0.ids[best] } ?? Int32(best)
            }
            next = Int32(session.argmax(of: x.data, rows: 1)[0].index)
            for l in 0..<(L - 1) where exits[l] == next { agreeing[l] += 1 }
            agreeing[L - 1] += 1
            measured += 1
        }
        return ExitAgreement(top1: agreeing.map { measured > 0 ? Double($0) / Double(measured) : 0 }, source: source, positions: measured)
    }

    /// Each exit's top-1 agreement with the full model over `samples` (teacher-forced, every position).
    public static func measureExits(model: LlamaModel, samples: [[Int32]], source: String) -> ExitAgreement {
        let analysis = LayerAnalyzer(model: model, options: AnalysisOptions(batchSize: 4, blockSizes: [1], earlyExit: true))
            .analyze(samples: samples, source: AnalysisSource(model: "", dataset: source, context: samples.map(\.count).max() ?? 0))
        return ExitAgreement(top1: analysis.earlyExitTop1Agreement ?? [], source: source, positions: analysis.tokens)
    }
}

extension SpeculationProfile.TokenFrequencies {
    /// counts[id] for every id of a V-token vocabulary (0 for ids not listed).
    public func denseCounts(vocabularySize V: Int) -> [Int] {
        var dense = [Int](repeating: 0, count: V)
        for (id, n) in zip(ids, counts) where Int(id) < V { dense[Int(id)] = n }
        return dense
    }
}
