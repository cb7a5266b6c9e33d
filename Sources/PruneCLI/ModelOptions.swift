// Options shared by every command that loads a model.
import ArgumentParser
import Foundation
import Llama
import Pipeline
import Support
import Tensor
import Tokenizers

/// The checkpoint directory and thread count.
struct ModelOptions: ParsableArguments {
    @Argument(help: "Hugging Face checkpoint directory (config.json + model.safetensors or sharded index).")
    var model: String

    @Option(name: .long, help: "Worker threads for matrix multiplies (default: all cores).")
    var threads: Int?

    @Flag(name: .long, help: "Print what runs where (CPU, BLAS kernel set and how it was chosen, kernel variant, threads) to stderr.")
    var verbose = false

    var modelURL: URL { URL(fileURLWithPath: model) }

    /// The thread count every pass of this run uses.
    func parallelism() throws -> Parallelism {
        guard let threads else { return .allCores }
        guard threads >= 1 else { throw PruneError("--threads", "must be at least 1, got \(threads)") }
        return Parallelism(threads: threads)
    }

    /// Loads the model with the thread setting.
    func loadModel() throws -> LlamaModel {
        let parallelism = try parallelism()
        if verbose {
            FileHandle.standardError.write(Data(SystemReport.lines(threads: parallelism.threads).joined(separator: "\n").utf8 + [10]))
        }
        return try LlamaModel.load(directory: modelURL, parallelism: parallelism)
    }

    /// The checkpoint's tokenizer (an error if it has none).
    func loadTokenizer() throws -> Tokenizer {
        try TokenizerLoader.load(directory: modelURL)
    }

    /// The tokenizer if the checkpoint has one (pre-tokenized datasets need none).
    func optionalTokenizer() throws -> Tokenizer? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: modelURL.appendingPathComponent("tokenizer.model").path)
                || fm.fileExists(atPath: modelURL.appendingPathComponent("tokenizer.json").path) else { return nil }
        return try loadTokenizer()
    }
}

/// Writes a JSON object to stdout with sorted keys.
func printJSON(_ object: Any) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
