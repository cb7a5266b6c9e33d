// `prune eval --task` as a library call: zero-shot multiple-choice scoring with lm-eval-harness's semantics
// (a `multiple_choice` task, zero-shot, Hugging Face backend, no chat template): each choice is scored as the
// continuation " " + choice of the question's context (lm-eval's default target_delimiter), tokenized as
// ContinuationEncoder describes, by its summed log-likelihood; acc and acc_norm follow MultipleChoiceScores.
import Data
import Foundation
import Llama
import Support
import Tokenizers

/// What a task scoring reads and how it batches.
public struct TaskScoringOptions {
    /// JSON Lines of {"context", "choices", "gold"} (MultipleChoiceTask).
    public var task: URL
    /// Continuations per forward pass (right-padded; the scores do not depend on it).
    public var batchSize = TaskScoringOptions.defaultBatchSize
    public static let defaultBatchSize = 8

    public init(task: URL, batchSize: Int = defaultBatchSize) {
        self.task = task
        self.batchSize = batchSize
    }
}

/// The task scoring flow.
public enum TaskScoringJob {
    /// lm-eval's target_delimiter: what joins a context and each of its choices.
    public static let targetDelimiter = " "

    /// Scores `source` on `options.task` (the task read and tokenized, and the checkpoint validated and its memory
    /// checked, before the model is loaded). `progress` hears how far it is.
    public static func run(_ source: ModelSource, options o: TaskScoringOptions, progress: ProgressSink? = nil,
                           log: JobLog = .standardError) throws -> MultipleChoiceScores {
        let task = try MultipleChoiceTask(url: o.task)
        let checkpoint = try source.validated()
        let tokenizer = try source.requiredTokenizer(for: "scoring a task")
        let config = checkpoint.config
        let requests = try encode(task, tokenizer: tokenizer, maxLength: config.maxPositionEmbeddings, vocabularySize: config.vocabSize)
        let longest = requests.joined().map { min($0.context.count + $0.continuation.count - 1, config.maxPositionEmbeddings) }.max() ?? 1
        let model = try source.loadModel(checkpoint, memory: {
            MemoryEstimate.inference(config: $0, batch: o.batchSize, context: longest, threads: $1)
        }, job: "task scoring of \(o.batchSize) × \(longest) tokens", log: log)
        return try score(requests, of: task, model: model, source: source, batchSize: o.batchSize, progress: progress)
    }

    /// Scores `task` with a loaded `model` (of `source`, whose tokenizer is `tokenizer`).
    public static func score(_ task: MultipleChoiceTask, model: LlamaModel, source: ModelSource, tokenizer: Tokenizer,
                             batchSize: Int = TaskScoringOptions.defaultBatchSize, progress: ProgressSink? = nil) throws -> MultipleChoiceScores {
        let requests = try encode(task, tokenizer: tokenizer, maxLength: model.config.maxPositionEmbeddings,
                                  vocabularySize: model.config.vocabSize)
        return try score(requests, of: task, model: model, source: source, batchSize: batchSize, progress: progress)
    }

    /// Each question's choices as token ids (one list per question), refusing what lm-eval asserts on (no context
    /// token, a choice with no token of its own, a choice longer than the model's positions) and ids outside the
    /// model's vocabulary, naming the task file's line.
    static func encode(_ task: MultipleChoiceTask, tokenizer: Tokenizer, maxLength: Int,
                       vocabularySize: Int) throws -> [[ContinuationTokens]] {
        let encoder = ContinuationEncoder(tokenizer: tokenizer)
        return try task.questions.map { q in
            func fail(_ problem: String) -> PruneError { PruneError(file: task.url, "line \(q.line): \(problem)") }
            return try q.choices.enumerated().map { i, choice in
                let r = encoder.encode(context: q.context, continuation: targetDelimiter + choice)
                guard !r.context.isEmpty else {
                    throw fail(q.context.isEmpty ? "the context is empty and the tokenizer has neither BOS nor EOS to stand for it"
                                                 : "the context is only whitespace and the tokenizer adds no BOS: no token to score the choices after")
                }
                guard !r.continuation.isEmpty else { throw fail("choice \(i) gives no token of its own after the context") }
                guard r.continuation.count <= maxLength else {
                    throw fail("choice \(i) is \(r.continuation.count) tokens, more than max_position_embeddings \(maxLength)")
                }
                if let bad = (r.context + r.continuation).first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
                    throw fail("token id \(bad) is outside the model's vocabulary (0…\(vocabularySize - 1))")
                }
                return r
            }
        }
    }

    static func score(_ requests: [[ContinuationTokens]], of task: MultipleChoiceTask, model: LlamaModel, source: ModelSource,
                      batchSize: Int, progress: ProgressSink?) throws -> MultipleChoiceScores {
        let flat = Array(requests.joined())
        let reporter = progress.map { ProgressReporter("task", total: flat.count, sink: $0) }
        let lls = ContinuationLogLikelihood.logLikelihoods(model: model, requests: flat, batchSize: batchSize, progress: reporter)
        // A NaN or infinite log-likelihood is a broken model, not a score.
        if let bad = lls.first(where: { !$0.isFinite }) {
            throw PruneError(source.path, "a choice's log-likelihood is \(bad): not a finite number (the weights or config.json give non-finite values)")
        }
        var questions: [QuestionScore] = [], first = 0
        for q in task.questions {
            questions.append(QuestionScore(line: q.line, choices: q.choices, logLikelihoods: Array(lls[first..<first + q.choices.count]), gold: q.gold))
            first += q.choices.count
        }
        return MultipleChoiceScores(questions: questions)
    }
}
