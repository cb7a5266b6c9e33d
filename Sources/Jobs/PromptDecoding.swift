// Plain greedy and self-speculative decoding of the same prompts with one loaded model, timed and compared: the
// measurement behind `prune bench --speculate` (Bench/SpeculationBenchmark) and the layerskip study (Recipes).
import Foundation
import Generation
import Llama
import Tokenizers

/// Plain greedy and self-speculative decoding of each prompt with one loaded model (the speculation benchmark's and
/// the layerskip study's measurement): tokens/s of whole generations (prompt included) summed over the prompts,
/// what the speculation request settled to per prompt, and whether each output equals plain greedy's.
package struct PromptDecoding {
    package var plainTokensPerSecond: Double
    package var autoTokensPerSecond: Double
    /// Per prompt: "exit:8 K=4", or "plain" when the setup decoded plainly.
    package var choices: [String]
    /// Prompts whose speculative output equals the plain one.
    package var identical: Int
    /// Drafted and accepted tokens over all prompts.
    package var drafted: Int
    package var accepted: Int
    package var plainIDs: [[Int32]]
    /// The exits chosen, in first-seen order.
    package var chosenExits: [Int]

    package static func measure(model: LlamaModel, tokenizer: Tokenizer, source: ModelSource, prompts: [[Int32]], sampling: SamplingOptions,
                                request: SpeculationRequest, log: JobLog) throws -> PromptDecoding {
        var plainTokens = 0, plainSeconds = 0.0, autoTokens = 0, autoSeconds = 0.0
        var out = PromptDecoding(plainTokensPerSecond: 0, autoTokensPerSecond: 0, choices: [], identical: 0, drafted: 0, accepted: 0,
                                 plainIDs: [], chosenExits: [])
        func seconds(_ x: GenerationJob.Result) -> Double {
            Double(x.ids.count) / max((x.statistics["tokens_per_second"] as? Double) ?? 0, 1e-9)
        }
        for (i, ids) in prompts.enumerated() {
            let job = GenerationJob(model: model, tokenizer: tokenizer, promptIDs: ids, sampling: sampling)
            let plain = try job.run(.plain, comparePlain: false) { _ in }
            let setup = try SpeculationSetup(request, job: job, source: source)
            let auto = try job.run(.speculative(setup), comparePlain: false) { _ in }
            plainTokens += plain.ids.count; plainSeconds += seconds(plain)
            autoTokens += auto.ids.count; autoSeconds += seconds(auto)
            if auto.ids == plain.ids { out.identical += 1 }
            out.drafted += (auto.statistics["drafted"] as? Int) ?? 0
            out.accepted += (auto.statistics["accepted"] as? Int) ?? 0
            out.choices.append(setup.draft.map { "\($0) K=\(setup.draftTokens)" } ?? "plain")
            if case .exit(let e)? = setup.draft, !out.chosenExits.contains(e) { out.chosenExits.append(e) }
            out.plainIDs.append(plain.ids)
            log.note(String(format: "  prompt %d/%d: plain %.1f tokens/s, speculative %.1f tokens/s (%@)\n", i + 1, prompts.count,
                            Double(plain.ids.count) / max(seconds(plain), 1e-9), Double(auto.ids.count) / max(seconds(auto), 1e-9),
                            out.choices.last ?? ""))
        }
        out.plainTokensPerSecond = Double(plainTokens) / max(plainSeconds, 1e-9)
        out.autoTokensPerSecond = Double(autoTokens) / max(autoSeconds, 1e-9)
        return out
    }
}
