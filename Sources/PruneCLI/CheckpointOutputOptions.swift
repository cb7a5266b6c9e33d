// Where `cut` and `merge` write their checkpoint: one declaration of -o and --force, and --dtype as every command
// that writes a checkpoint declares it (OutputDTypeOption, finetune's too).
import ArgumentParser
import CLISupport

/// -o, --dtype and --force of a command that writes a checkpoint.
struct CheckpointOutputOptions: ParsableArguments {
    @Option(name: [.short, .customLong("output")], help: "Directory for the new checkpoint.")
    var output: String

    @OptionGroup var storage: OutputDTypeOption

    @Flag(name: .long, help: "Replace OUT if it exists and is not empty.")
    var force = false
}
