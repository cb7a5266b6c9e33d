import ArgumentParser
import Foundation
import Llama
import ModelIO

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Continue a prompt (greedy at temperature 0, else top-p sampling).")

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Prompt text.")
    var prompt: String

    @Option(name: .long, help: "Most new tokens to produce.")
    var maxTokens = 64

    @Option(name: .long, help: "Sampling temperature; 0 picks the most likely token (greedy).")
    var temperature = 0.0

    @Option(name: .long, help: "Nucleus sampling: keep the most likely tokens up to this probability mass.")
    var topP = 1.0

    @Option(name: .long, help: "Random seed for sampling.")
    var seed: UInt64 = 0

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be ≥ 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    func run() throws {
        let model = try options.loadModel()
        let tokenizer = try options.loadTokenizer()
        let ids = tokenizer.encode(prompt)
        guard !ids.isEmpty else { throw PruneError("--prompt", "encodes to no tokens") }
        var sampling = SamplingOptions()
        sampling.maxTokens = min(maxTokens, model.config.maxPositionEmbeddings - ids.count)
        sampling.temperature = temperature
        sampling.topP = topP
        sampling.seed = seed
        sampling.stopTokens = Set(model.config.eosTokenIDs.map { Int32($0) } + (tokenizer.eosTokenID.map { [$0] } ?? []))
        var produced: [Int32] = []
        var printed = ""
        print(prompt, terminator: "")
        _ = Generator(model: model).generate(prompt: ids, options: sampling) { id in
            // Decode the whole continuation each time: pieces can merge across tokens (bytes, spaces).
            produced.append(id)
            let text = tokenizer.decode(produced, skipSpecialTokens: true)
            if text.hasPrefix(printed) {
                print(text.dropFirst(printed.count), terminator: "")
                printed = text
                fflush(stdout)
            }
        }
        print()
    }
}
