// `prune generate` as a library call: encode the prompt (plain, or as one user message through the
// checkpoint's chat template), check it against the model's positions, and stream the continuation as
// text, decoded together with the prompt as transformers does.
import Foundation
import Generation
import Llama
import Support
import Tokenizers

/// The prompt and how to continue it.
public struct GenerationOptions {
    public var prompt: String
    /// Most new tokens (clipped so that prompt + new tokens fit max_position_embeddings).
    public var maxTokens = 64
    /// 0 picks the most likely token (greedy).
    public var temperature = 0.0
    /// Nucleus sampling mass.
    public var topP = 1.0
    public var seed: UInt64 = 0
    /// Wrap the prompt as one user message with the checkpoint's chat template.
    public var chat = false
    /// A system message before the prompt (with `chat`).
    public var system: String?

    public init(prompt: String, maxTokens: Int = 64, temperature: Double = 0, topP: Double = 1, seed: UInt64 = 0,
                chat: Bool = false, system: String? = nil) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.chat = chat
        self.system = system
    }
}

/// A loaded model and tokenizer with the prompt encoded and checked, ready to generate.
public struct GenerationJob {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    /// The prompt's token ids.
    public let promptIDs: [Int32]
    public let sampling: SamplingOptions

    /// A job from parts already settled (a benchmark reusing one loaded model with other sampling options).
    public init(model: LlamaModel, tokenizer: Tokenizer, promptIDs: [Int32], sampling: SamplingOptions) {
        self.model = model
        self.tokenizer = tokenizer
        self.promptIDs = promptIDs
        self.sampling = sampling
    }

    /// Loads `source`, encodes the prompt and settles the sampling options (errors before anything is generated).
    public init(_ source: ModelSource, options o: GenerationOptions, log: JobLog = .standardError) throws {
        let checkpoint = try source.validated()
        tokenizer = try source.requiredTokenizer(for: "generating text")
        let ids = try Self.promptIDs(o, tokenizer: tokenizer, model: source.directory)
        guard !ids.isEmpty else { throw PruneError("--prompt", "encodes to no tokens") }
        let positions = min(ids.count + o.maxTokens, checkpoint.config.maxPositionEmbeddings)
        let loaded = try source.loadModel(checkpoint, memory: {
            MemoryEstimate.inference(config: $0, batch: 1, context: ids.count, threads: $1, cachedPositions: positions)
        }, job: "generation over \(positions) positions", log: log)
        let vocab = loaded.config.vocabSize
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw PruneError(source.path, "the tokenizer gives id \(bad), outside the model's vocabulary (vocab_size \(vocab))")
        }
        model = loaded
        let limit = model.config.maxPositionEmbeddings
        guard ids.count < limit else {
            throw PruneError("--prompt", "is \(ids.count) tokens; max_position_embeddings of \(source.path) is \(limit)")
        }
        var sampling = SamplingOptions()
        sampling.maxTokens = source.clippedToPositions(ids.count + o.maxTokens, of: model, asked: "the prompt plus --max-tokens",
                                                       log: log) - ids.count
        sampling.temperature = o.temperature
        sampling.topP = o.topP
        sampling.seed = o.seed
        sampling.stopTokens = Self.stopTokens(model: model, tokenizer: tokenizer)
        promptIDs = ids
        self.sampling = sampling
    }

    /// The ids generation stops before: the config's eos_token_id(s) and the tokenizer's EOS.
    public static func stopTokens(model: LlamaModel, tokenizer: Tokenizer) -> Set<Int32> {
        Set(model.config.eosTokenIDs.map { Int32($0) } + (tokenizer.eosTokenID.map { [$0] } ?? []))
    }

    /// Generates, handing `onText` the text each new token adds; returns the text still held back at the end
    /// (a partial character), to be written last.
    public func run(onText: @escaping (String) -> Void) throws -> String {
        try run(.plain, comparePlain: false, onText: onText).heldBack
    }

    /// How the continuation is decoded.
    public enum Decoding {
        /// The full model, token by token.
        case plain
        /// LayerSkip self-speculation as settled by SpeculationSetup: draft with the draft layers, verify with the
        /// full model (exact); plain when exit:auto found no faster setting.
        case speculative(SpeculationSetup)
        /// Leave the stack at the first exit whose top-1 probability reaches `threshold` (approximate).
        case earlyExit(threshold: Double, minLayer: Int, every: Int)
    }

    /// What a decoding produced, with its statistics.
    public struct Result {
        /// The generated ids (without the prompt, stopping before EOS).
        public var ids: [Int32]
        /// The generated text, and the part of it held back until the end (a partial character).
        public var text: String
        public var heldBack: String
        /// {"tokens_per_second", …} for --json.
        public var statistics: [String: Any]
        /// Lines for stderr (prefill and decode speeds; speculation or early-exit statistics, the plain comparison).
        public var report: String?
    }

    /// Generates with `decoding`, streaming text through `onText`; with `comparePlain`, also decodes plainly and
    /// reports both speeds and whether the outputs agree.
    public func run(_ decoding: Decoding, comparePlain: Bool, onText: @escaping (String) -> Void) throws -> Result {
        var decoder = StreamingDecoder(tokenizer: tokenizer, prompt: promptIDs)
        var text = ""
        let show = { (piece: String) in
            text += piece
            onText(piece)
        }
        var statistics: [String: Any] = [:]
        var report: String? = nil
        var timing = DecodeTiming()
        let generated: [Int32]
        func plain() throws -> (ids: [Int32], seconds: Double) {
            let start = Date()
            let ids = try Generator(model: model).generate(prompt: promptIDs, options: sampling)
            return (ids, Date().timeIntervalSince(start))
        }
        /// Plain decoding, streamed.
        func streamedPlain() throws -> [Int32] {
            let start = Date()
            let generator = Generator(model: model)
            let ids = try generator.generate(prompt: promptIDs, options: sampling) { show(decoder.append($0)) }
            statistics["tokens_per_second"] = Double(ids.count) / max(Date().timeIntervalSince(start), 1e-9)
            timing = generator.timing
            return ids
        }
        switch decoding {
        case .plain:
            generated = try streamedPlain()
        case .speculative(let setup):
            guard let draft = setup.draft else {
                generated = try streamedPlain()
                report = setup.notes.joined(separator: "\n")
                break
            }
            let k = setup.draftTokens
            let generator = SelfSpeculativeGenerator(model: model, draft: draft, draftTokens: k,
                                                     draftVocabulary: setup.draftVocabulary, draftStop: setup.draftStop)
            generated = try generator.generate(prompt: promptIDs, options: sampling) { show(decoder.append($0)) }
            let stats = generator.statistics
            timing = generator.timing
            statistics = ["tokens_per_second": stats.tokensPerSecond, "acceptance_rate": stats.acceptanceRate,
                          "mean_accepted": stats.meanAccepted, "draft": draft.description, "draft_tokens": k,
                          "drafted": stats.drafted, "accepted": stats.accepted,
                          "setup_seconds": setup.seconds]
            report = (setup.notes.map { $0 + "\n" }.joined()) + String(format: "speculate %@, K=%d%@: %d tokens in %.3f s (%.1f tokens/s); %d verification passes, %d of %d drafted tokens accepted (%.1f%%), %.2f accepted per pass",
                            draft.description, k, setup.draftStop.map { String(format: ", draft stop %g", $0) } ?? "", stats.generated, stats.seconds, stats.tokensPerSecond,
                            stats.verifications, stats.accepted, stats.drafted, 100 * stats.acceptanceRate, stats.meanAccepted)
            if comparePlain {
                let (ids, seconds) = try plain()
                let rate = Double(ids.count) / max(seconds, 1e-9)
                // Sampled outputs are distributed alike, not equal draw for draw (the two consume the seed differently).
                let verdict = sampling.temperature > 0 ? "sampled (equal in distribution, not draw for draw)"
                    : ids == generated ? "identical" : "DIFFER"
                report = (report ?? "") + String(format: "\nplain %@: %d tokens in %.3f s (%.1f tokens/s); speculative speedup %.2f×; outputs %@",
                                  sampling.temperature > 0 ? "sampling" : "greedy", ids.count, seconds, rate,
                                  stats.tokensPerSecond / rate, verdict)
                statistics["plain_tokens_per_second"] = rate
                if sampling.temperature == 0 { statistics["identical_to_plain"] = ids == generated }
            }
        case .earlyExit(let threshold, let minLayer, let every):
            let generator = EarlyExitGenerator(model: model, threshold: threshold, minLayer: minLayer, checkEvery: every)
            generated = generator.generate(prompt: promptIDs, options: sampling) { show(decoder.append($0)) }
            let stats = generator.statistics
            timing = generator.timing
            statistics = ["tokens_per_second": stats.tokensPerSecond, "mean_layers": stats.meanLayers]
            report = String(format: "dynamic early exit (APPROXIMATE, not the full model's output), threshold %g: %d tokens in %.3f s (%.1f tokens/s); %.2f of %d layers per token",
                            threshold, stats.generated, stats.seconds, stats.tokensPerSecond, stats.meanLayers, model.layers.count)
            if comparePlain {
                let (ids, seconds) = try plain()
                let same = zip(ids, generated).prefix { $0 == $1 }.count
                report = (report ?? "") + String(format: "\nplain greedy: %d tokens in %.3f s (%.1f tokens/s); the first %d tokens agree with it%@",
                                  ids.count, seconds, Double(ids.count) / max(seconds, 1e-9), same, ids == generated ? " (all)" : "")
                statistics["agreeing_prefix"] = same
            }
        }
        statistics["prefill_tokens_per_second"] = timing.prefillTokensPerSecond
        statistics["decode_tokens_per_second"] = timing.decodeTokensPerSecond
        statistics["decode_seconds"] = timing.decodeSeconds
        let speeds = String(format: "prefill: %d tokens in %.3f s (%.1f tokens/s); decode: %d tokens in %.3f s (%.1f tokens/s)",
                            timing.prefillTokens, timing.prefillSeconds, timing.prefillTokensPerSecond,
                            timing.decodeTokens, timing.decodeSeconds, timing.decodeTokensPerSecond)
        report = report.map { speeds + "\n" + $0 } ?? speeds
        let rest = decoder.finish()
        return Result(ids: generated, text: text + rest, heldBack: rest, statistics: statistics, report: report)
    }

    /// The prompt's ids: plain (with BOS as the tokenizer adds it), or rendered through the chat template,
    /// which writes any BOS itself (so none is added again, as transformers' apply_chat_template does).
    public static func promptIDs(_ o: GenerationOptions, tokenizer: Tokenizer, model: URL) throws -> [Int32] {
        guard o.chat else { return tokenizer.encode(o.prompt) }
        guard let template = tokenizer.chatTemplate else {
            throw PruneError(model.appendingPathComponent("tokenizer_config.json").path, "no chat_template; drop --chat")
        }
        var messages: [ChatMessage] = []
        if let system = o.system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: o.prompt))
        let special = { (id: Int32?) in id.map { tokenizer.pieces([$0])[0] } }
        let text = try ChatTemplate.render(template, messages: messages, addGenerationPrompt: true,
                                           bosToken: special(tokenizer.bosTokenID), eosToken: special(tokenizer.eosTokenID))
        return tokenizer.encode(text, addSpecialTokens: false)
    }
}
