// The checkpoint a job reads: its directory, the path as the user wrote it (for messages), and the thread
// count every pass of the run uses. Loads the model and, when the checkpoint has one, its tokenizer.
import Checkpoint
import Foundation
import Llama
import Support
import Tensor
import Tokenizers

/// A checkpoint directory and how to run it.
public struct ModelSource {
    /// The checkpoint directory (config.json + model.safetensors or a sharded index).
    public var directory: URL
    /// The directory as given, for messages ("… of Checkpoints/stories260K").
    public var path: String
    /// The threads for every parallel loop of the run.
    public var parallelism: Parallelism
    /// Say what runs where (CPU, BLAS, kernels, threads) as a note when the model is loaded.
    public var verbose: Bool
    /// Whether 16-bit matrices stay as stored (mapped) or become Float32.
    public var weightsDType: WeightsDType

    public init(path: String, parallelism: Parallelism = .allCores, verbose: Bool = false, weightsDType: WeightsDType = .stored) {
        self.directory = URL(fileURLWithPath: path)
        self.path = path
        self.parallelism = parallelism
        self.verbose = verbose
        self.weightsDType = weightsDType
    }

    /// Loads the model (saying what runs where first when `verbose`).
    public func loadModel(log: JobLog = .standardError) throws -> LlamaModel {
        if verbose { log.note(SystemReport.lines(threads: parallelism.threads).joined(separator: "\n") + "\n") }
        return try LlamaModel.load(directory: directory, weightsDType: weightsDType, parallelism: parallelism)
    }

    /// The peak memory of forward passes of B×T tokens with full logits, estimated from the checkpoint's header
    /// before loading it (T clipped to max_position_embeddings).
    public func forwardEstimate(batch: Int, length: Int) throws -> MemoryEstimate {
        let config = try LlamaConfig.load(directory.appendingPathComponent("config.json"))
        let weights = MemoryEstimate.weightBytes(tensors: try CheckpointTensors(directory: directory), dtype: weightsDType)
        return MemoryEstimate.forward(config: config, weights: weights, batch: batch,
                                      length: min(length, config.maxPositionEmbeddings), parallelism: parallelism)
    }

    /// The checkpoint's tokenizer (an error if it has none).
    public func loadTokenizer() throws -> Tokenizer {
        try TokenizerLoader.load(directory: directory)
    }

    /// The checkpoint's tokenizer, or an error saying that `purpose` needs one (generate, tokenize).
    public func requiredTokenizer(for purpose: String) throws -> Tokenizer {
        guard let tokenizer = try optionalTokenizer() else {
            throw PruneError(file: directory, "has no tokenizer.model or tokenizer.json; \(purpose) needs the checkpoint's tokenizer")
        }
        return tokenizer
    }

    /// The tokenizer if the checkpoint has one (pre-tokenized datasets need none).
    public func optionalTokenizer() throws -> Tokenizer? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: directory.appendingPathComponent("tokenizer.model").path)
                || fm.fileExists(atPath: directory.appendingPathComponent("tokenizer.json").path) else { return nil }
        return try loadTokenizer()
    }

    /// `tokens` (what --context, or a prompt plus --max-tokens, asks for) clipped to the model's
    /// max_position_embeddings, with a warning when that clips: positions past it were never trained.
    public func clippedToPositions(_ tokens: Int, of model: LlamaModel, asked what: String, log: JobLog) -> Int {
        let limit = model.config.maxPositionEmbeddings
        guard tokens > limit else { return tokens }
        log.warning("\(what) is \(tokens) tokens, more than max_position_embeddings \(limit) of \(path); using \(limit)")
        return limit
    }
}
