// The dtype of a checkpoint a command writes (cut, merge, finetune's OUT/merged): one declaration of --dtype and one
// reading of it (SafetensorsDType.output, the parser recipes use too).
import ArgumentParser
import Checkpoint

/// --dtype of a command that writes a checkpoint.
public struct OutputDTypeOption: ParsableArguments {
    @Option(name: .long, help: "Store the written checkpoint's weights as f32, bf16 or f16 (default: each tensor keeps the source's dtype; unchanged tensors bit-exact).")
    public var dtype: String?

    public init() {}

    public func validate() throws {
        _ = try asUsageError { try storedDType() }
    }

    /// --dtype as the checkpoint writers take it; nil keeps each tensor's dtype.
    public func storedDType() throws -> SafetensorsDType? {
        try dtype.map { try SafetensorsDType.output($0) }
    }
}
