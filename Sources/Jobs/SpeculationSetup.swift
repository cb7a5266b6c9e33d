// `prune generate --speculate …` settled into a SelfSpeculativeGenerator's settings: the draft layers (given, or
// exit:auto's choice), K, the reduced draft vocabulary (--draft-vocab N from --draft-vocab-from DATA or from the
// model's speculation.json) and the dynamic draft stop. exit:auto measures each exit's top-1 agreement on
// --calibration DATA (else takes the stored profile's, else measures it along the model's own greedy continuation
// of the prompt, through the draft head) and times decoding's pieces here (DecodeCost), then takes the (E, K) with the highest predicted speed-up; when none predicts one it says
// so and decodes plainly. Every choice is said in one line.
import Analysis
import Data
import Foundation
import Generation
import Llama
import Support
import Tokenizers

/// Self-speculation as asked on the command line.
public struct SpeculationRequest {
    public var draft: DraftSelection
    /// K; nil: 4, or exit:auto's choice.
    public var draftTokens: Int?
    /// --draft-vocab: a size, `.full` (the whole vocabulary), or nil (the stored profile's size if any).
    public var draftVocabulary: DraftVocabularySize?
    /// --draft-vocab-from: count token frequencies here instead of the stored profile's.
    public var draftVocabularyFrom: URL?
    /// --draft-stop.
    public var draftStop: Double?
    /// --calibration: exit:auto measures exit agreement on this dataset.
    public var calibration: URL?
    /// A profile to use instead of the model's speculation.json (a study measures it once for many prompts).
    public var profile: SpeculationProfile?

    public enum DraftVocabularySize: Equatable {
        case full
        case size(Int)
    }

    public init(draft: DraftSelection, draftTokens: Int? = nil, draftVocabulary: DraftVocabularySize? = nil,
                draftVocabularyFrom: URL? = nil, draftStop: Double? = nil, calibration: URL? = nil,
                profile: SpeculationProfile? = nil) {
        self.draft = draft
        self.draftTokens = draftTokens
        self.draftVocabulary = draftVocabulary
        self.draftVocabularyFrom = draftVocabularyFrom
        self.draftStop = draftStop
        self.calibration = calibration
        self.profile = profile
    }

    /// Samples and tokens per sample exit:auto calibrates on with --calibration DATA.
    public static let calibrationSamples = 8, calibrationContext = 128
    /// Greedy tokens exit:auto decodes from the prompt to measure agreement when no calibration is given or stored.
    public static let continuationTokens = 64
}

/// The settled settings and what was chosen, in words.
public struct SpeculationSetup {
    /// nil: exit:auto found no setting faster than plain decoding.
    public var draft: DraftLayers?
    public var draftTokens: Int
    public var draftVocabulary: DraftVocabulary?
    public var draftStop: Double?
    /// One line per choice made (draft vocabulary, exit:auto), for stderr.
    public var notes: [String]
    /// exit:auto's ranking, best first (empty for fixed layers).
    public var ranking: [SpeculationChoice]
    /// Seconds spent settling (counting tokens, calibrating, timing), not part of the generation's tokens/s.
    public var seconds = 0.0

    /// Settles `request` for `job`'s model (its directory is `source`).
    public init(_ request: SpeculationRequest, job: GenerationJob, source: ModelSource) throws {
        let start = Date()
        let model = job.model, c = model.config, L = model.layers.count
        if let problem = request.profile?.problem(config: c) { throw PruneError("speculation profile", problem) }
        let stored = try request.profile ?? SpeculationProfile.stored(in: source.directory, config: c)
        let maxK = SelfSpeculativeGenerator.maxDraftTokens
        if let k = request.draftTokens, !(1...maxK).contains(k) {
            throw PruneError("--draft-tokens", "must be in 1…\(maxK), got \(k)")
        }
        if let s = request.draftStop, !(s > 0 && s < 1) { throw PruneError("--draft-stop", "must be in (0, 1), got \(s)") }
        notes = []
        ranking = []
        draftStop = request.draftStop

        // The draft vocabulary: counted now, or the stored profile's.
        var frequencies = stored?.tokenFrequencies, size: Int? = stored?.draftVocabulary
        var origin = "\(source.path)/\(SpeculationProfile.fileName)"
        if let data = request.draftVocabularyFrom {
            frequencies = try SpeculationProfile.countTokens(of: try Dataset(url: data), tokenizer: job.tokenizer, vocabularySize: c.vocabSize)
            origin = data.path
        }
        switch request.draftVocabulary {
        case .full?: size = nil
        case .size(let n)?:
            guard n >= 1 && n < c.vocabSize else { throw PruneError("--draft-vocab", "must be in 1…\(c.vocabSize - 1) (below vocab_size), got \(n)") }
            guard frequencies != nil else {
                throw PruneError("--draft-vocab", "needs token frequencies: give --draft-vocab-from DATA, or a model with \(SpeculationProfile.fileName) (the layerskip recipe writes one)")
            }
            size = n
        case nil: if request.draftVocabularyFrom != nil { throw PruneError("--draft-vocab-from", "needs --draft-vocab N") }
        }
        if let n = size, let f = frequencies {
            let required = Array(job.sampling.stopTokens).sorted()
            let counts = f.denseCounts(vocabularySize: c.vocabSize)
            let ids = DraftVocabulary.mostFrequent(n, counts: counts, required: required)
            draftVocabulary = DraftVocabulary(model: model, ids: ids)
            let covered = ids.reduce(0) { $0 + counts[Int($1)] }
            notes.append(String(format: "draft vocabulary: the %d most frequent tokens of %@ (%.1f%% of its %d tokens), of %d; verification keeps the full head",
                                ids.count, origin, 100 * Double(min(covered, f.tokens)) / Double(max(f.tokens, 1)), f.tokens, c.vocabSize))
        }

        switch request.draft {
        case .layers(let layers):
            if let problem = layers.problem(layers: L) {
                throw PruneError("--speculate \(layers)", problem + " (\(source.path) has \(L) layers)")
            }
            draft = layers
            draftTokens = request.draftTokens ?? 4
        case .automaticExit:
            let agreement: SpeculationProfile.ExitAgreement
            if let data = request.calibration {
                let dataset = try Dataset(url: data)
                let context = min(SpeculationRequest.calibrationContext, c.maxPositionEmbeddings)
                let samples = try CalibrationSamples.select(from: dataset, tokenizer: job.tokenizer,
                                                            count: SpeculationRequest.calibrationSamples, context: context)
                try dataset.checkIDs(samples, vocabularySize: c.vocabSize)
                agreement = SpeculationProfile.measureExits(model: model, samples: samples, source: data.path)
            } else if let a = stored?.exitAgreement {
                agreement = a
            } else {
                // No text given or stored: the model's own greedy continuation of the prompt, each exit through the
                // draft head, as the drafts will be made.
                agreement = SpeculationProfile.measureExitsOnContinuation(
                    model: model, prompt: job.promptIDs, tokens: SpeculationRequest.continuationTokens, draft: draftVocabulary,
                    stopTokens: job.sampling.stopTokens, source: "the model's greedy continuation of the prompt")
            }
            let cost = DecodeCost.measure(model, rows: (request.draftTokens ?? maxK) + 1, cachedPositions: job.promptIDs.count + 64,
                                          draftHead: draftVocabulary?.head)
            ranking = SpeculationChoice.ranked(agreement: agreement.top1, cost: cost, maxDraftTokens: maxK)
                .filter { request.draftTokens == nil || $0.draftTokens == request.draftTokens }
            let measured = String(format: "top-1 agreement on %@ (%d positions); one layer %.2f ms, head %.2f ms (draft head %.2f ms)",
                                  agreement.source, agreement.positions, 1e3 * cost.layer[0], 1e3 * cost.head[0], 1e3 * cost.draftHead)
            guard let best = ranking.first, best.predictedSpeedup > 1 else {
                draft = nil
                draftTokens = request.draftTokens ?? 1
                notes.append("exit:auto: no exit predicts a speed-up over plain decoding (best: " + (ranking.first.map(Self.describe) ?? "none")
                             + "), so decoding plainly; " + measured)
                seconds = Date().timeIntervalSince(start)
                return
            }
            draft = .exit(best.exit)
            draftTokens = best.draftTokens
            let next = ranking.first { $0.exit != best.exit }.map { "; next exit " + Self.describe($0) } ?? ""
            notes.append("exit:auto: chose " + Self.describe(best) + next + "; " + measured
                         + String(format: "; settled in %.2f s", Date().timeIntervalSince(start)))
        }
        seconds = Date().timeIntervalSince(start)
    }

    static func describe(_ c: SpeculationChoice) -> String {
        String(format: "exit:%d K=%d (agreement %.2f, %.2f tokens per pass, predicted %.2f× plain)",
               c.exit, c.draftTokens, c.agreement, c.tokensPerPass, c.predictedSpeedup)
    }
}
