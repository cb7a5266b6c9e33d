// How a command holds and runs a model: one declaration of --threads and --weights-dtype for prune's model commands
// (through ModelOptions) and finetune. Each is nil unless given, so that finetune's --resume keeps a saved value.
import ArgumentParser
import Jobs
import Llama
import Tensor

/// --threads and --weights-dtype.
public struct LoadingOptions: ParsableArguments {
    @Option(name: .long, help: "Worker threads for matrix multiplies (default: all cores).")
    public var threads: Int?

    @Option(name: .long, help: "How bf16/f16 matrices are held: stored (the default: mapped from the file as they are and widened to float32 inside the matrix multiplies; half the memory, the same results) or f32 (converted on load).")
    public var weightsDtype: WeightsDType?

    public init() {}

    public func validate() throws {
        try asUsageError { try Parallelism.check(threads: threads) }
    }
}

// `--weights-dtype stored|f32`, listed in --help as the library's enum.
extension WeightsDType: ExpressibleByArgument {}
