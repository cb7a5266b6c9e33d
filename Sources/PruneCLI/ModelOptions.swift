// Options shared by every command that loads a model.
import ArgumentParser
import Checkpoint
import Cluster
import Foundation
import Jobs
import Llama
import Support
import Tensor

/// The checkpoint directory and thread count.
struct ModelOptions: ParsableArguments {
    @Argument(help: "Hugging Face checkpoint directory (config.json + model.safetensors or sharded index).")
    var model: String

    @Option(name: .long, help: "Worker threads for matrix multiplies (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "How bf16/f16 matrices are held: stored (mapped from the file as they are and widened to float32 inside the matrix multiplies: half the memory, the same results) or f32 (converted on load).")
    var weightsDtype: WeightsDTypeOption = .stored

    @Flag(name: .long, help: "Print what runs where (CPU, BLAS kernel set and how it was chosen, kernel variant, threads) to stderr.")
    var verbose = false

    var modelURL: URL { URL(fileURLWithPath: model) }

    func validate() throws {
        try asUsageError { try Parallelism.check(threads: threads) }
    }

    /// The checkpoint as the library's jobs take it.
    var source: ModelSource {
        ModelSource(path: model, parallelism: .forRun(threads: threads), verbose: verbose, weightsDType: weightsDtype.value)
    }
}

/// `--weights-dtype stored|f32`.
enum WeightsDTypeOption: String, ExpressibleByArgument, CaseIterable {
    case stored, f32
    var value: WeightsDType { self == .stored ? .stored : .f32 }
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
