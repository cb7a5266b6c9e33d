// Options shared by every command that loads a model.
import ArgumentParser
import Checkpoint
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

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
    }

    /// The thread count every pass of this run uses.
    func parallelism() -> Parallelism {
        threads.map { Parallelism(threads: max(1, $0)) } ?? .allCores
    }

    /// The checkpoint after CheckpointValidation (config, tensors, tokenizer files), nothing loaded yet.
    func validatedCheckpoint() throws -> ValidatedCheckpoint {
        try CheckpointValidation.validate(modelURL)
    }

    /// Loads the model with the thread setting, once `memory` (the job's estimate, made from the validated
    /// config) is known to fit in the memory available; `job` names the job in the refusal.
    func loadModel(_ checkpoint: ValidatedCheckpoint, memory: (LlamaConfig, Int) -> MemoryEstimate, job: String) throws -> LlamaModel {
        let parallelism = parallelism()
        if verbose {
            FileHandle.standardError.write(Data(SystemReport.lines(threads: parallelism.threads).joined(separator: "\n").utf8 + [10]))
        }
        try memory(checkpoint.config, parallelism.threads).check(available: try Self.memoryAvailable(), job: job, model: modelURL)
        return try LlamaModel.load(checkpoint, parallelism: parallelism)
    }

    /// Memory a job may use: the machine's (SystemMemory), capped by PRUNE_MEMORY_LIMIT ("8G", "512M", bytes)
    /// when set, e.g. to leave room for other jobs.
    static func memoryAvailable() throws -> Int? {
        guard let text = ProcessInfo.processInfo.environment["PRUNE_MEMORY_LIMIT"] else { return SystemMemory.available() }
        guard let limit = SystemMemory.parseSize(text) else {
            throw PruneError("PRUNE_MEMORY_LIMIT", "\"\(text)\" is not a size (e.g. 8G, 512M or a byte count)")
        }
        return SystemMemory.available(limit: limit)
    }

    /// The checkpoint's tokenizer (an error if it has none).
    func loadTokenizer() throws -> Tokenizer {
        try TokenizerLoader.load(directory: modelURL)
    }

    /// The checkpoint's tokenizer, or an error saying that `purpose` needs one (generate, tokenize).
    func requiredTokenizer(for purpose: String) throws -> Tokenizer {
        guard let tokenizer = try optionalTokenizer() else {
            throw PruneError(file: modelURL, "has no tokenizer.model or tokenizer.json; \(purpose) needs the checkpoint's tokenizer")
        }
        return tokenizer
    }

    /// The tokenizer if the checkpoint has one (pre-tokenized datasets need none).
    func optionalTokenizer() throws -> Tokenizer? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: modelURL.appendingPathComponent("tokenizer.model").path)
                || fm.fileExists(atPath: modelURL.appendingPathComponent("tokenizer.json").path) else { return nil }
        return try loadTokenizer()
    }
}

/// One "warning: …" line on stderr (stdout stays clean for --json).
func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}

/// `tokens` (what --context, or a prompt plus --max-tokens, asks for) clipped to the model's
/// max_position_embeddings, with a warning when that clips: positions past it were never trained.
func clippedToPositions(_ tokens: Int, of config: LlamaConfig, at path: String, asked what: String) -> Int {
    let limit = config.maxPositionEmbeddings
    guard tokens > limit else { return tokens }
    warn("\(what) is \(tokens) tokens, more than max_position_embeddings \(limit) of \(path); using \(limit)")
    return limit
}

/// Writes a JSON object to stdout with sorted keys, NaN and ±Inf as null; returns where those were.
@discardableResult
func printJSON(_ object: Any) -> [String] {
    let (text, nonFinite) = FiniteJSON.line(object)
    print(text)
    return nonFinite
}
