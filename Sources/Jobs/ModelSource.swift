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
    /// How the frozen projections and the lm_head multiply (`--compute`): Float32, or bf16 through oneDNN.
    public var compute: ComputePrecision

    public init(path: String, parallelism: Parallelism = .allCores, verbose: Bool = false, weightsDType: WeightsDType = .stored,
                compute: ComputePrecision = .f32) {
        self.directory = URL(fileURLWithPath: path)
        self.path = path
        self.parallelism = parallelism
        self.verbose = verbose
        self.weightsDType = weightsDType
        self.compute = compute
    }

    /// The checkpoint after CheckpointValidation (config, tensors, tokenizer files), nothing loaded yet.
    public func validated() throws -> ValidatedCheckpoint {
        try CheckpointValidation.validate(directory)
    }

    /// Loads the validated checkpoint once `memory` (the job's estimate from the config and thread count) is
    /// known to fit in the memory available; `job` names the job in the refusal. Says what runs where first
    /// when `verbose`.
    public func loadModel(_ checkpoint: ValidatedCheckpoint, memory: (LlamaConfig, Int) -> MemoryEstimate, job: String,
                          log: JobLog = .standardError) throws -> LlamaModel {
        if verbose { log.note(SystemReport.lines(threads: parallelism.threads).joined(separator: "\n") + "\n") }
        let estimate = self.estimate(checkpoint, memory: memory)
        if verbose { log.note("memory estimate for \(job): \(estimate.summary)\n") }
        try estimate.check(available: try Self.memoryAvailable(), job: job, model: directory)
        try compute.checkAvailable()
        let model = try LlamaModel.load(checkpoint, weightsDType: weightsDType, parallelism: parallelism)
        try model.compute(in: compute)
        if verbose, compute == .bf16, let dnnl = try? DNNLRuntime.load() {
            log.note("compute: bf16 products for the projections and the lm_head on \(dnnl.summary), Float32 accumulation\n")
        }
        return model
    }

    /// `memory` (the job's estimate from the config and thread count) with the weights as this load will hold
    /// them (16-bit matrices mapped, the rest converted), read from the checkpoint's headers.
    public func estimate(_ checkpoint: ValidatedCheckpoint, memory: (LlamaConfig, Int) -> MemoryEstimate) -> MemoryEstimate {
        var estimate = memory(checkpoint.config, parallelism.threads)
        estimate.setWeights(from: checkpoint.tensors, dtype: weightsDType)
        if compute == .bf16 { estimate.addBF16Copies(config: checkpoint.config, backward: estimate.training > 0) }
        return estimate
    }

    /// Validates and loads the model with the memory check of a single-sequence forward (B = 1, T up to 256).
    public func loadModel(log: JobLog = .standardError) throws -> LlamaModel {
        let checkpoint = try validated()
        return try loadModel(checkpoint, memory: { c, threads in
            MemoryEstimate.inference(config: c, batch: 1, context: min(256, c.maxPositionEmbeddings), threads: threads)
        }, job: "loading the model", log: log)
    }

    /// Memory a job may use: the machine's (SystemMemory), capped by PRUNE_MEMORY_LIMIT ("8G", "512M", bytes)
    /// when set, e.g. to leave room for other jobs.
    public static func memoryAvailable() throws -> Int? {
        guard let text = ProcessInfo.processInfo.environment["PRUNE_MEMORY_LIMIT"] else { return SystemMemory.available() }
        guard let limit = SystemMemory.parseSize(text) else {
            throw PruneError("PRUNE_MEMORY_LIMIT", "\"\(text)\" is not a size (e.g. 8G, 512M or a byte count)")
        }
        return SystemMemory.available(limit: limit)
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
        clippedToPositions(tokens, of: model.config, asked: what, log: log)
    }

    /// The same, from the config alone (before the model is loaded).
    public func clippedToPositions(_ tokens: Int, of config: LlamaConfig, asked what: String, log: JobLog) -> Int {
        let limit = config.maxPositionEmbeddings
        guard tokens > limit else { return tokens }
        log.warning("\(what) is \(tokens) tokens, more than max_position_embeddings \(limit) of \(path); using \(limit)")
        return limit
    }
}
