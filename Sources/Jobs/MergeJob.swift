// `prune merge` as a library call: fold a PEFT adapter into its base (LoRAMerger), then give the files the check
// finetune's export gets (ExportCheck): reload them and compare their logits with the base + adapter in memory.
import Checkpoint
import Foundation
import Llama
import Support
import Surgery
import Tensor
import Training

public enum MergeJob {
    /// Merges `adapter` into `model` at `output` and checks the result; `model` and `adapter` as the user wrote them.
    public static func run(model: String, adapter: String, output: String, dtype: SafetensorsDType?, force: Bool,
                           parallelism: Parallelism = .allCores) throws -> (report: MergeReport, check: ExportCheck.Result) {
        let (base, adapterURL, out) = (URL(fileURLWithPath: model), URL(fileURLWithPath: adapter), URL(fileURLWithPath: output))
        let report = try LoRAMerger(model: base, adapter: adapterURL, parallelism: parallelism)
            .merge(to: out, dtype: dtype, force: force, names: (model, adapter), tool: "prune \(SystemReport.version) merge")
        let inMemory = try LlamaModel.load(directory: base, parallelism: parallelism)
        try PEFTAdapter.read(adapterURL).attach(to: inMemory, directory: adapterURL)
        let check = try ExportCheck.verify(merged: out, against: inMemory,
                                           tokens: ExportCheck.probeTokens(vocabularySize: inMemory.config.vocabSize),
                                           parallelism: parallelism)
        return (report, check)
    }
}
