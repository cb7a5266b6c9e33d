// Options shared by every command that loads a model.
import ArgumentParser
import CLISupport
import Checkpoint
import Cluster
import Foundation
import Jobs
import Llama
import Support
import Tensor

/// The checkpoint directory, how it is held and run (LoadingOptions), and --verbose.
struct ModelOptions: ParsableArguments {
    @Argument(help: "Hugging Face checkpoint directory (config.json + model.safetensors or sharded index).")
    var model: String

    @OptionGroup var loading: LoadingOptions

    @Flag(name: .long, help: "Print what runs where (CPU, BLAS kernel set and how it was chosen, kernel variant, threads) to stderr.")
    var verbose = false

    var modelURL: URL { URL(fileURLWithPath: model) }

    /// The checkpoint as the library's jobs take it.
    var source: ModelSource {
        ModelSource(path: model, parallelism: .forRun(threads: loading.threads), verbose: verbose,
                    weightsDType: loading.weightsDtype ?? .stored)
    }

    /// The checkpoint as the library's jobs take it, run with `compute` (--compute; nil is f32).
    func source(compute: ComputePrecision?) -> ModelSource {
        var s = source
        s.compute = compute ?? .f32
        return s
    }
}

/// Writes a JSON object to stdout with sorted keys, NaN and ±Inf as null; returns where those were.
@discardableResult
func printJSON(_ object: Any) -> [String] {
    let (text, nonFinite) = FiniteJSON.line(object)
    print(text)
    return nonFinite
}

/// Writes an Encodable result to stdout as one line of key-sorted JSON, NaN and ±Inf as null; returns how many.
@discardableResult
func printJSON<T: Encodable>(encoding value: T) throws -> Int {
    let (data, nonFinite) = try FiniteJSON.encode(value, pretty: false)
    print(String(decoding: data, as: UTF8.self))
    return nonFinite
}
