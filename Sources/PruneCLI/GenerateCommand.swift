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

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be ≥ 0 (0 is greedy), got \(temperature)") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1], got \(topP)") }
    }

    func run() throws {
        let checkpoint = try options.validatedCheckpoint()
        let tokenizer = try options.requiredTokenizer(for: "generating text")
        let ids = try promptIDs(tokenizer)
        let positions = min(ids.count + maxTokens, checkpoint.config.maxPositionEmbeddings)
        let model = try options.loadModel(checkpoint, memory: {
            MemoryEstimate.inference(config: $0, batch: 1, context: ids.count, threads: $1, cachedPositions: positions)
        }, job: "generation over \(positions) positions")
        guard !ids.isEmpty else { throw PruneError("--prompt", "encodes to no tokens") }
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= model.config.vocabSize }) {
            throw PruneError(options.modelURL.path, "the tokenizer gives id \(bad), outside the model's vocabulary (vocab_size \(model.config.vocabSize))")
        }
        let limit = model.config.maxPositionEmbeddings
        guard ids.count < limit else {
            throw PruneError("--prompt", "is \(ids.count) tokens; max_position_embeddings of \(options.model) is \(limit)")
        }
        var sampling = SamplingOptions()
        sampling.maxTokens = clippedToPositions(ids.count + maxTokens, of: model.config, at: options.model,
                                                asked: "the prompt plus --max-tokens") - ids.count
        sampling.temperature = temperature
        sampling.topP = topP
        sampling.seed = seed
        sampling.stopTokens = Set(model.config.eosTokenIDs.map { Int32($0) } + (tokenizer.eosTokenID.map { [$0] } ?? []))
        // As transformers: decode prompt and continuation together and print what follows the decoded prompt.
        var decoder = StreamingDecoder(tokenizer: tokenizer, prompt: ids)
        if !chat { print(prompt, terminator: "") }
        _ = try Generator(model: model).generate(prompt: ids, options: sampling) { id in
            print(decoder.append(id), terminator: "")
            fflush(stdout)
        }
        print(decoder.finish())
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
