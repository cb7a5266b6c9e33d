// Where `cut` and `merge` write their checkpoint: one declaration of -o, --dtype and --force, and one reading
// of --dtype (SafetensorsDType.output, the parser recipes and finetune use too).
import ArgumentParser
import Checkpoint

/// -o, --dtype and --force of a command that writes a checkpoint.
struct CheckpointOutputOptions: ParsableArguments {
    @Option(name: [.short, .customLong("output")], help: "Directory for the new checkpoint.")
    var output: String

    @Option(name: .long, help: "Store the weights as f32, bf16 or f16 (default: each tensor keeps its dtype; unchanged tensors bit-exact).")
    var dtype: String?

    @Flag(name: .long, help: "Replace OUT if it exists and is not empty.")
    var force = false

    func validate() throws {
        _ = try asUsageError { try storedDType() }
    }

    /// --dtype as the checkpoint writers take it; nil keeps each tensor's dtype.
    func storedDType() throws -> SafetensorsDType? {
        try dtype.map { try SafetensorsDType.output($0) }
    }
}
