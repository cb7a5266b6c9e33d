import ArgumentParser
import Foundation
import Llama
import Support
import Tokenizers

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Continue a prompt (greedy at temperature 0, else top-p sampling).")

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Prompt text.")
    var prompt: String

    @Option(name: .long, help: "Most new tokens to produce.")
    var maxTokens = 64

    // .unconditional: a value such as -1 is read as the value (and refused by validate), not as a flag.
    @Option(name: .long, parsing: .unconditional, help: "Sampling temperature; 0 picks the most likely token (greedy).")
    var temperature = 0.0

    @Option(name: .long, parsing: .unconditional, help: "Nucleus sampling: keep the most likely tokens up to this probability mass.")
    var topP = 1.0

    @Option(name: .long, help: "Random seed for sampling.")
    var seed: UInt64 = 0

    @Flag(name: .long, help: "Wrap the prompt as one user message with the checkpoint's chat template (tokenizer_config.json).")
    var chat = false

    @Option(name: .long, help: "System message to put before the prompt (with --chat).")
    var system: String?

    @Option(name: .long, help: ArgumentHelp(
        "Self-speculative greedy decoding: draft with the model's own layers, verify with all of them (same output as plain greedy).",
        discussion: "exit:E drafts with layers 0…E−1 + final norm + lm_head (LayerSkip); skip:LIST drafts with every layer except LIST (0-based, inclusive: skip:11-18 or skip:3,5-6; Draft & Verify). Statistics go to stderr.",
        valueName: "exit:E|skip:LIST"))
    var speculate: String?

    @Option(name: .long, help: "Tokens drafted per verification pass (with --speculate).")
    var draftTokens = 4

    @Option(name: .long, help: ArgumentHelp(
        "APPROXIMATE dynamic early exit: a token leaves the layers at the first checked exit whose top-1 probability is at least this (e.g. 0.9).",
        discussion: "Not the full model's output (CALM-style: skipped layers get keys and values from the exit state). Layers used per token and tokens/s go to stderr; add --compare-plain for the agreement with plain greedy."))
    var exitThreshold: Double?

    @Option(name: .long, help: "With --exit-threshold: the first exit checked, as a layer count (1 = after layer 0).")
    var exitMinLayer = 1

    @Option(name: .long, help: "With --exit-threshold: check an exit every this many layers (each check costs one lm_head).")
    var exitEvery = 1

    @Flag(name: .long, help: "With --speculate or --exit-threshold: also decode plainly, then report both speeds and whether the outputs agree (stderr).")
    var comparePlain = false

    @Flag(name: .long, help: "Print {\"ids\", \"text\", \"tokens_per_second\"} (+ \"acceptance_rate\", \"mean_accepted\" with --speculate) instead of the text; ids are the generated ones only.")
    var json = false

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        if let speculate {
            guard DraftLayers(argument: speculate) != nil else {
                throw ValidationError("--speculate must be exit:E or skip:LIST (e.g. exit:4, skip:11-18), got \(speculate)")
            }
            guard temperature == 0 else { throw ValidationError("--speculate decodes greedily: drop --temperature") }
            guard draftTokens >= 1 else { throw ValidationError("--draft-tokens must be at least 1") }
        }
        if let exitThreshold {
            guard exitThreshold > 0 && exitThreshold <= 1 else { throw ValidationError("--exit-threshold must be in (0, 1], got \(exitThreshold)") }
            guard speculate == nil else { throw ValidationError("--exit-threshold and --speculate exclude each other") }
            guard temperature == 0 else { throw ValidationError("--exit-threshold decodes greedily: drop --temperature") }
            guard exitMinLayer >= 1 && exitEvery >= 1 else { throw ValidationError("--exit-min-layer and --exit-every must be at least 1") }
        }
        if comparePlain && speculate == nil && exitThreshold == nil {
            throw ValidationError("--compare-plain needs --speculate or --exit-threshold")
        }
        guard temperature >= 0 else { throw ValidationError("--temperature must be ≥ 0 (0 is greedy), got \(temperature)") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1], got \(topP)") }
    }

    func run() throws {
        let tokenizer = try options.requiredTokenizer(for: "generating text")
        let model = try options.loadModel()
        let ids = try promptIDs(tokenizer)
        guard !ids.isEmpty else { throw PruneError("--prompt", "encodes to no tokens") }
        let limit = model.config.maxPositionEmbeddings
        guard ids.count < limit else {
            throw PruneError("--prompt", "is \(ids.count) tokens; max_position_embeddings of \(options.model) is \(limit)")
        }
        var sampling = SamplingOptions()
        sampling.maxTokens = clippedToPositions(ids.count + maxTokens, of: model, at: options.model,
                                                asked: "the prompt plus --max-tokens") - ids.count
        sampling.temperature = temperature
        sampling.topP = topP
        sampling.seed = seed
        sampling.stopTokens = Set(model.config.eosTokenIDs.map { Int32($0) } + (tokenizer.eosTokenID.map { [$0] } ?? []))
        // As transformers: decode prompt and continuation together and print what follows the decoded prompt.
        var decoder = StreamingDecoder(tokenizer: tokenizer, prompt: ids)
        var text = ""
        if !chat && !json { print(prompt, terminator: "") }
        let show = { (piece: String) in
            text += piece
            if !json { print(piece, terminator: ""); fflush(stdout) }
        }
        var result: [String: Any] = [:]
        var report: String? = nil   // speculation statistics for stderr, after the text
        let generated: [Int32]
        if let speculate {
            let draft = DraftLayers(argument: speculate)!
            if let problem = draft.problem(layers: model.layers.count) {
                throw PruneError("--speculate \(speculate)", problem + " (\(options.model) has \(model.layers.count) layers)")
            }
            let generator = SelfSpeculativeGenerator(model: model, draft: draft, draftTokens: draftTokens)
            generated = generator.generate(prompt: ids, options: sampling) { show(decoder.append($0)) }
            show(decoder.finish())
            let stats = generator.statistics
            result = ["tokens_per_second": stats.tokensPerSecond, "acceptance_rate": stats.acceptanceRate,
                      "mean_accepted": stats.meanAccepted]
            report = String(format: "speculate %@, K=%d: %d tokens in %.3f s (%.1f tokens/s); %d verification passes, %d of %d drafted tokens accepted (%.1f%%), %.2f accepted per pass",
                                draft.description, draftTokens, stats.generated, stats.seconds, stats.tokensPerSecond,
                                stats.verifications, stats.accepted, stats.drafted, 100 * stats.acceptanceRate, stats.meanAccepted)
            if comparePlain {
                let start = Date()
                let plain = Generator(model: model).generate(prompt: ids, options: sampling)
                let seconds = Date().timeIntervalSince(start)
                let plainRate = Double(plain.count) / max(seconds, 1e-9)
                report! += String(format: "\nplain greedy: %d tokens in %.3f s (%.1f tokens/s); speculative speedup %.2f×; outputs %@",
                                 plain.count, seconds, plainRate, stats.tokensPerSecond / plainRate,
                                 plain == generated ? "identical" : "DIFFER")
                result["plain_tokens_per_second"] = plainRate
                result["identical_to_plain"] = plain == generated
            }
        } else if let exitThreshold {
            let generator = EarlyExitGenerator(model: model, threshold: exitThreshold, minLayer: exitMinLayer, checkEvery: exitEvery)
            generated = generator.generate(prompt: ids, options: sampling) { show(decoder.append($0)) }
            show(decoder.finish())
            let stats = generator.statistics
            result = ["tokens_per_second": stats.tokensPerSecond, "mean_layers": stats.meanLayers]
            report = String(format: "dynamic early exit (APPROXIMATE, not the full model's output), threshold %g: %d tokens in %.3f s (%.1f tokens/s); %.2f of %d layers per token",
                            exitThreshold, stats.generated, stats.seconds, stats.tokensPerSecond, stats.meanLayers, model.layers.count)
            if comparePlain {
                let start = Date()
                let plain = Generator(model: model).generate(prompt: ids, options: sampling)
                let seconds = Date().timeIntervalSince(start)
                let same = zip(plain, generated).prefix { $0 == $1 }.count
                report! += String(format: "\nplain greedy: %d tokens in %.3f s (%.1f tokens/s); the first %d tokens agree with it%@",
                                  plain.count, seconds, Double(plain.count) / max(seconds, 1e-9), same,
                                  plain == generated ? " (all)" : "")
                result["agreeing_prefix"] = same
            }
        } else {
            let start = Date()
            generated = Generator(model: model).generate(prompt: ids, options: sampling) { show(decoder.append($0)) }
            show(decoder.finish())
            result["tokens_per_second"] = Double(generated.count) / max(Date().timeIntervalSince(start), 1e-9)
        }
        if json {
            result["ids"] = generated.map(Int.init)
            result["text"] = text
            printJSON(result)
        } else {
            print("")
        }
        fflush(stdout)
        if let report { FileHandle.standardError.write((report + "\n").data(using: .utf8)!) }
    }

    /// The prompt's ids: plain (with BOS as the tokenizer adds it), or rendered through the chat template,
    /// which writes any BOS itself (so none is added again, as transformers' apply_chat_template does).
    func promptIDs(_ tokenizer: Tokenizer) throws -> [Int32] {
        guard chat else { return tokenizer.encode(prompt) }
        guard let template = tokenizer.chatTemplate else {
            throw PruneError(options.modelURL.appendingPathComponent("tokenizer_config.json").path, "no chat_template; drop --chat")
        }
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: prompt))
        let special = { (id: Int32?) in id.map { tokenizer.pieces([$0])[0] } }
        let text = try ChatTemplate.render(template, messages: messages, addGenerationPrompt: true,
                                           bosToken: special(tokenizer.bosTokenID), eosToken: special(tokenizer.eosTokenID))
        return tokenizer.encode(text, addSpecialTokens: false)
    }
}
