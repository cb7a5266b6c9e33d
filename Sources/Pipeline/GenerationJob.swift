// `prune generate` as a library call: encode the prompt (plain, or as one user message through the
// checkpoint's chat template), check it against the model's positions, and stream the continuation as
// text, decoded together with the prompt as transformers does.
import Foundation
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

    /// Loads `source`, encodes the prompt and settles the sampling options (errors before anything is generated).
    public init(_ source: ModelSource, options o: GenerationOptions, log: JobLog = .standardError) throws {
        tokenizer = try source.requiredTokenizer(for: "generating text")
        model = try source.loadModel(log: log)
        let ids = try Self.promptIDs(o, tokenizer: tokenizer, model: source.directory)
        guard !ids.isEmpty else { throw PruneError("--prompt", "encodes to no tokens") }
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
        sampling.stopTokens = Set(model.config.eosTokenIDs.map { Int32($0) } + (tokenizer.eosTokenID.map { [$0] } ?? []))
        promptIDs = ids
        self.sampling = sampling
    }

    /// Generates, handing `onText` the text each new token adds; returns the text still held back at the end
    /// (a partial character), to be written last.
    public func run(onText: (String) -> Void) -> String {
        var decoder = StreamingDecoder(tokenizer: tokenizer, prompt: promptIDs)
        _ = Generator(model: model).generate(prompt: promptIDs, options: sampling) { id in onText(decoder.append(id)) }
        return decoder.finish()
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
