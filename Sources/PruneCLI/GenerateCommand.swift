import ArgumentParser
import Foundation
import Pipeline

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
        let job = try GenerationJob(options.source, options: GenerationOptions(
            prompt: prompt, maxTokens: maxTokens, temperature: temperature, topP: topP, seed: seed, chat: chat, system: system))
        if !chat { print(prompt, terminator: "") }
        let rest = job.run { text in
            print(text, terminator: "")
            fflush(stdout)
        }
        print(rest)
    }
}
