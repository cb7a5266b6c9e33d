import ArgumentParser
import Foundation
import Jobs
import Surgery

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a PEFT LoRA adapter into its base checkpoint.",
        discussion: """
        Reads any PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors; one from `finetune` or one PEFT saved) and writes a complete Hugging Face checkpoint with W + scale·B·A in every adapted projection (scale = lora_alpha/r, or lora_alpha/√r with use_rslora), computed in float32 and stored in the base's dtype unless --dtype is given. Every other tensor is copied byte for byte; config.json keeps every key; sharding, tied embeddings, tokenizer and generation files are kept.

        The files are then checked as finetune's export is: reloaded, their logits compared with the base + adapter in memory, within a bound that follows the stored dtype's rounding; a failure marks the directory with EXPORT_CHECK_FAILED.txt and exits 1.

        An adapter trained on a model of another shape or layer count (e.g. on a different cut) is refused, as are DoRA, trained biases and modules_to_save.
        """)

    @Argument(help: "Base checkpoint directory (the model the adapter was trained on).")
    var model: String

    @Option(name: .long, help: "PEFT LoRA adapter directory.")
    var adapter: String

    @OptionGroup var destination: CheckpointOutputOptions

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let (report, check) = try MergeJob.run(model: model, adapter: adapter, output: destination.output, dtype: try destination.storage.storedDType(),
                                               force: destination.force)
        if json {
            print(String(decoding: try JSONEncoder.sorted.encode(report), as: UTF8.self))
        } else {
            print(report.text, terminator: "")
            print(check.summary)
        }
    }
}
