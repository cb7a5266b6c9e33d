import ArgumentParser
import CLISupport
import Foundation
import Generation
import Jobs
import Llama
import Support

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
        "Self-speculative decoding: draft with the model's own layers, verify with all of them (greedy: plain greedy's output; with --temperature: speculative sampling, distributed as plain sampling).",
        discussion: "exit:E drafts with layers 0…E−1 + final norm + lm_head (LayerSkip); exit:auto chooses E and K from each exit's measured top-1 agreement (--calibration DATA, else the model's speculation.json, else the prompt) and each piece's measured cost, and says why; skip:LIST drafts with every layer except LIST (0-based, inclusive: skip:11-18 or skip:3,5-6; Draft & Verify). Statistics go to stderr.",
        valueName: "exit:E|exit:auto|skip:LIST"))
    var speculate: String?

    @Option(name: .long, help: "Tokens drafted per verification pass (with --speculate; default 4, or exit:auto's choice).")
    var draftTokens: Int?

    @Option(name: .long, help: ArgumentHelp(
        "With --speculate: the draft's head scores only the N most frequent tokens (FR-Spec); `all` for the whole vocabulary. Verification keeps the full head, so the output is unchanged.",
        discussion: "Frequencies come from --draft-vocab-from DATA, else the model's speculation.json (whose size is also the default).",
        valueName: "N|all"))
    var draftVocab: String?

    @Option(name: .long, help: "With --draft-vocab: count token frequencies in this dataset (.txt or JSONL).")
    var draftVocabFrom: String?

    @Option(name: .long, help: "With --speculate: stop drafting after a token whose draft probability is below this (dynamic draft length).")
    var draftStop: Double?

    @Option(name: .long, help: "With --speculate exit:auto: measure each exit's top-1 agreement on the first records of this dataset.")
    var calibration: String?

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

    @Flag(name: .long, help: "Print {\"ids\", \"text\", \"tokens_per_second\", \"prefill_tokens_per_second\", \"decode_tokens_per_second\", \"decode_seconds\"} (+ \"acceptance_rate\", \"mean_accepted\", \"drafted\", \"accepted\", \"draft\", \"draft_tokens\", \"setup_seconds\" with --speculate) instead of the text; ids are the generated ones only.")
    var json = false

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        if let speculate {
            let draft = try asUsageError { try DraftSelection(parsing: speculate) }
            let most = SelfSpeculativeGenerator.maxDraftTokens
            if let k = draftTokens, !(1...most).contains(k) { throw ValidationError("--draft-tokens must be in 1…\(most), got \(k)") }
            if let p = draftStop, !(p > 0 && p < 1) { throw ValidationError("--draft-stop must be in (0, 1), got \(p)") }
            if let v = draftVocab { _ = try Self.draftVocabularySize(v) }
            if draftVocabFrom != nil && draftVocab == nil { throw ValidationError("--draft-vocab-from needs --draft-vocab N") }
            if calibration != nil && draft != .automaticExit { throw ValidationError("--calibration goes with --speculate exit:auto") }
        } else {
            for (given, flag) in [(draftTokens != nil, "--draft-tokens"), (draftVocab != nil, "--draft-vocab"),
                                  (draftVocabFrom != nil, "--draft-vocab-from"), (draftStop != nil, "--draft-stop"),
                                  (calibration != nil, "--calibration")] where given {
                throw ValidationError("\(flag) needs --speculate")
            }
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

    /// `--draft-vocab N|all`.
    static func draftVocabularySize(_ text: String) throws -> SpeculationRequest.DraftVocabularySize {
        if text == "all" { return .full }
        guard let n = Int(text), n >= 1 else { throw ValidationError("--draft-vocab must be a positive token count or all, got \(text)") }
        return .size(n)
    }

    func run() throws {
        let job = try GenerationJob(options.source, options: GenerationOptions(
            prompt: prompt, maxTokens: maxTokens, temperature: temperature, topP: topP, seed: seed, chat: chat, system: system))
        var decoding = GenerationJob.Decoding.plain
        if let speculate {
            let request = SpeculationRequest(
                draft: try DraftSelection(parsing: speculate), draftTokens: draftTokens,
                draftVocabulary: try draftVocab.map(Self.draftVocabularySize),
                draftVocabularyFrom: draftVocabFrom.map { URL(fileURLWithPath: $0) }, draftStop: draftStop,
                calibration: calibration.map { URL(fileURLWithPath: $0) })
            decoding = .speculative(try SpeculationSetup(request, job: job, source: options.source))
        } else if let exitThreshold {
            decoding = .earlyExit(threshold: exitThreshold, minLayer: exitMinLayer, every: exitEvery)
        }
        if !chat && !json { print(prompt, terminator: "") }
        let result = try job.run(decoding, comparePlain: comparePlain) { piece in
            if !json { print(piece, terminator: ""); fflush(stdout) }
        }
        if json {
            var obj = result.statistics
            obj["ids"] = result.ids.map(Int.init)
            obj["text"] = result.text
            printJSON(obj)
        } else {
            print(result.heldBack)
        }
        fflush(stdout)
        if let report = result.report { FileHandle.standardError.write(Data((report + "\n").utf8)) }
    }
}
