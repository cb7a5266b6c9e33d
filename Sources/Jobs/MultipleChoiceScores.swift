// lm-eval-harness's multiple-choice metrics (lm_eval/api/task.py `process_results`, lm_eval/api/metrics.py):
// a question's prediction is the choice of largest summed log-likelihood (acc), or of largest log-likelihood per
// character of the choice (acc_norm); ties go to the first. The task's score is the mean over questions, its
// standard error the sample standard deviation over √n (`mean_stderr`), undefined for one question.
import Foundation

/// One question's log-likelihoods and predictions.
public struct QuestionScore: Sendable {
    /// The question's line in the task file.
    public var line: Int
    /// Summed log-likelihood of each choice after the context (nats).
    public var logLikelihoods: [Double]
    /// Index of the right choice.
    public var gold: Int
    /// The choice of largest log-likelihood.
    public var prediction: Int
    /// The choice of largest log-likelihood divided by its length.
    public var normalizedPrediction: Int

    /// Scores `logLikelihoods` of `choices`. The length that acc_norm divides by is lm-eval's `len(choice)`: Unicode
    /// code points of the choice as written (not bytes, tokens or grapheme clusters, and without the delimiter).
    public init(line: Int, choices: [String], logLikelihoods: [Double], gold: Int) {
        precondition(choices.count == logLikelihoods.count && !choices.isEmpty, "\(choices.count) choices, \(logLikelihoods.count) scores")
        self.line = line
        self.logLikelihoods = logLikelihoods
        self.gold = gold
        prediction = Self.firstLargest(logLikelihoods)
        normalizedPrediction = Self.firstLargest(zip(logLikelihoods, choices).map { $0 / Double($1.unicodeScalars.count) })
    }

    /// numpy's argmax: the first index of the largest value.
    static func firstLargest(_ values: [Double]) -> Int {
        values.indices.reduce(0) { values[$1] > values[$0] ? $1 : $0 }
    }
}

/// A task's accuracy and length-normalised accuracy with their standard errors.
public struct MultipleChoiceScores: Encodable, Sendable {
    /// Fraction of questions whose prediction is the gold choice.
    public var acc: Double
    /// Standard error of `acc`; nil for a single question.
    public var accStderr: Double?
    /// Fraction of questions whose normalised prediction is the gold choice.
    public var accNorm: Double
    public var accNormStderr: Double?
    /// Questions scored.
    public var n: Int
    /// Every question, in file order.
    public var questions: [QuestionScore]

    public init(questions: [QuestionScore]) {
        precondition(!questions.isEmpty, "no questions")
        let hits = questions.map { $0.prediction == $0.gold ? 1.0 : 0.0 }
        let normHits = questions.map { $0.normalizedPrediction == $0.gold ? 1.0 : 0.0 }
        self.questions = questions
        n = questions.count
        acc = Self.mean(hits)
        accStderr = Self.meanStandardError(hits)
        accNorm = Self.mean(normHits)
        accNormStderr = Self.meanStandardError(normHits)
    }

    static func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }

    /// Sample standard deviation (n − 1) over √n.
    static func meanStandardError(_ x: [Double]) -> Double? {
        guard x.count > 1 else { return nil }
        let mu = mean(x)
        let variance = x.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(x.count - 1)
        return variance.squareRoot() / Double(x.count).squareRoot()
    }

    enum CodingKeys: String, CodingKey {
        case acc, accStderr = "acc_stderr", accNorm = "acc_norm", accNormStderr = "acc_norm_stderr", n
    }

    /// The summary only; a standard error that does not exist is null.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(acc, forKey: .acc)
        try c.encode(accStderr, forKey: .accStderr)
        try c.encode(accNorm, forKey: .accNorm)
        try c.encode(accNormStderr, forKey: .accNormStderr)
        try c.encode(n, forKey: .n)
    }
}
