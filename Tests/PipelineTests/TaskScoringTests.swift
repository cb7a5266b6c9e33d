// Zero-shot multiple-choice scoring: lm-eval-harness's request tokenization, its metrics, batching that changes no
// score, and parity with lm-eval itself (Hugging Face backend) on the shipped KJV task and on a hand-written one, on
// stories260K (SentencePiece) and SmolLM2-135M (byte-level BPE).
import Data
import Foundation
@testable import Jobs
import Llama
import Support
import Tensor
import TestSupport
import Tokenizers
import XCTest

final class TaskScoringTests: XCTestCase {
    static let kjvEndings = Fixtures.projectRoot.appendingPathComponent("Recipes/data/kjv-endings.jsonl")
    /// 20 questions written by hand: trailing spaces, tabs and newlines in contexts, an empty context, non-ASCII and
    /// combining characters, choices from one character to a sentence, 2 to 5 choices, a context past stories260K's
    /// 512 positions.
    static let handwritten = Fixtures.file("tasks/handwritten.jsonl")

    // MARK: tokenization as lm-eval's Hugging Face backend does it

    /// A tokenizer that records what it is asked to encode: one id per Unicode scalar (its value), BOS = 1 when asked.
    final class RecordingTokenizer: Tokenizer {
        var encoded: [(text: String, special: Bool)] = []
        let vocabularySize = 0x110000
        let bosTokenID: Int32?
        let eosTokenID: Int32? = 2
        let addsBOS: Bool
        let chatTemplate: String? = nil
        init(bos: Int32?) { bosTokenID = bos; addsBOS = bos != nil }
        func encode(_ text: String, addSpecialTokens: Bool) -> [Int32] {
            encoded.append((text, addSpecialTokens))
            return (addSpecialTokens && addsBOS ? [1] : []) + text.unicodeScalars.map { Int32($0.value) }
        }
        func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String { "" }
        func pieces(_ ids: [Int32]) -> [String] { ids.map { $0 == 1 ? "<s>" : $0 == 2 ? "</s>" : "?" } }
    }

    func testTheContextsTrailingWhitespaceMovesToTheContinuation() {
        let t = RecordingTokenizer(bos: 1)
        // Python's str.isspace: tab, newline, U+3000 and the separator U+001F are whitespace; U+200B is not.
        let r = ContinuationEncoder(tokenizer: t).encode(context: "Answer:\u{200B} \t\n\u{3000}\u{1F}", continuation: " yes")
        XCTAssertEqual(t.encoded.map(\.text), ["Answer:\u{200B}", "Answer:\u{200B} \t\n\u{3000}\u{1F} yes"])
        XCTAssertEqual(t.encoded.map(\.special), [true, true])
        XCTAssertEqual(r.context, [1] + "Answer:\u{200B}".unicodeScalars.map { Int32($0.value) })
        XCTAssertEqual(r.continuation, " \t\n\u{3000}\u{1F} yes".unicodeScalars.map { Int32($0.value) })
    }

    func testAnEmptyContextIsThePrefixToken() {
        let withBOS = RecordingTokenizer(bos: 1)
        let r = ContinuationEncoder(tokenizer: withBOS).encode(context: "", continuation: " yes")
        XCTAssertEqual(withBOS.encoded.map(\.special), [false], "the continuation alone, without special tokens")
        XCTAssertEqual(r, ContinuationTokens(context: [1], continuation: [32, 121, 101, 115]))
        // No BOS: EOS stands for the context.
        XCTAssertEqual(ContinuationEncoder(tokenizer: RecordingTokenizer(bos: nil)).encode(context: "", continuation: " a").context, [2])
        // A continuation that begins with the prefix token gives it to the context.
        let two = "\u{2}"
        XCTAssertEqual(ContinuationEncoder(tokenizer: RecordingTokenizer(bos: nil)).encode(context: "", continuation: two + "a"),
                       ContinuationTokens(context: [2], continuation: [97]))
    }

    func testATextBeginningWithThePrefixTokensTextGetsNoSecondBOS() {
        let t = RecordingTokenizer(bos: 1)
        _ = ContinuationEncoder(tokenizer: t).encode(context: "<s>Once", continuation: " upon")
        XCTAssertEqual(t.encoded.map(\.special), [false, false])
    }

    func testSentencePieceSplitsAsTheWholeTextDoes() throws {
        let t = try TokenizerLoader.load(directory: Fixtures.stories260K)
        let r = ContinuationEncoder(tokenizer: t).encode(context: "Once upon a time ", continuation: " there")
        XCTAssertEqual(r.context, t.encode("Once upon a time"))
        XCTAssertEqual(r.context + r.continuation, t.encode("Once upon a time  there"))
    }

    func testWhatLMEvalAssertsOnIsRefusedNamingTheLine() throws {
        let scratch = try Fixtures.temporaryDirectory("refusals")
        defer { try? FileManager.default.removeItem(at: scratch) }
        func refusal(_ line: String, tokenizer: Tokenizer, maxLength: Int = 512, vocabularySize: Int = 49152) throws -> String {
            let url = scratch.appendingPathComponent("t.jsonl")
            try Data(line.utf8).write(to: url)
            do {
                _ = try TaskScoringJob.encode(try MultipleChoiceTask(url: url), tokenizer: tokenizer, maxLength: maxLength, vocabularySize: vocabularySize)
                return "accepted"
            } catch let e as PruneError {
                XCTAssertEqual(e.subject, url.path)
                return e.problem
            }
        }
        // SmolLM2's tokenizer adds no BOS: a context of spaces leaves nothing to condition on once they move.
        let smol = try TokenizerLoader.load(directory: Fixtures.file("tokenizers/smollm2"))
        XCTAssertEqual(try refusal("{\"context\": \"  \", \"choices\": [\"a\"], \"gold\": 0}", tokenizer: smol),
                       "line 1: the context is only whitespace and the tokenizer adds no BOS: no token to score the choices after")
        XCTAssertEqual(try refusal("{\"context\": \"\", \"choices\": [\"a\"], \"gold\": 0}", tokenizer: smol), "accepted", "BOS stands for it")
        let stories = try TokenizerLoader.load(directory: Fixtures.stories260K)
        XCTAssertEqual(try refusal("{\"context\": \"  \", \"choices\": [\"a\"], \"gold\": 0}", tokenizer: stories), "accepted", "BOS is the context")
        XCTAssertEqual(try refusal("{\"context\": \"Once\", \"choices\": [\"upon a time\"], \"gold\": 0}", tokenizer: stories, maxLength: 2),
                       "line 1: choice 0 is 3 tokens, more than max_position_embeddings 2")
        XCTAssertEqual(try refusal("{\"context\": \"Once\", \"choices\": [\"upon\"], \"gold\": 0}", tokenizer: stories, vocabularySize: 300),
                       "line 1: token id 403 is outside the model's vocabulary (0…299)")
    }

    // MARK: metrics

    func testAccNormDividesByCodePointsNotBytesOrCharacters() {
        // Per code point: −4/4 = −1 beats −3/2 = −1.5; per byte "日本" (6 bytes) would win with −0.5.
        XCTAssertEqual(QuestionScore(line: 1, choices: ["abcd", "日本"], logLikelihoods: [-4, -3], gold: 0).normalizedPrediction, 0)
        // "e\u{301}" is one Character but two code points: −3/2 = −1.5 loses to −1.2/1 (as one Character it would be −3 / 1).
        XCTAssertEqual(QuestionScore(line: 1, choices: ["e\u{301}", "x"], logLikelihoods: [-1.3, -1.2], gold: 0).normalizedPrediction, 0)
        XCTAssertEqual(QuestionScore(line: 1, choices: ["e\u{301}", "x"], logLikelihoods: [-3, -1.2], gold: 0).normalizedPrediction, 1)
        XCTAssertEqual(QuestionScore(line: 1, choices: ["a", "b"], logLikelihoods: [-3, -1.2], gold: 0).prediction, 1)
    }

    func testTiesGoToTheFirstChoice() {
        let q = QuestionScore(line: 1, choices: ["ab", "cd", "ef"], logLikelihoods: [-5, -2, -2], gold: 2)
        XCTAssertEqual(q.prediction, 1)
        XCTAssertEqual(q.normalizedPrediction, 1)
    }

    func testStandardErrorIsTheSampleStandardDeviationOverRootN() {
        // Hits 1, 0, 1, 1: mean 0.75, sample variance (3 · 0.0625 + 0.5625) / 3 = 0.25, stderr 0.5 / 2.
        let right = QuestionScore(line: 1, choices: ["a", "b"], logLikelihoods: [-1, -2], gold: 0)
        let wrong = QuestionScore(line: 2, choices: ["a", "b"], logLikelihoods: [-1, -2], gold: 1)
        let s = MultipleChoiceScores(questions: [right, wrong, right, right])
        XCTAssertEqual(s.acc, 0.75)
        XCTAssertEqual(s.accStderr ?? .nan, 0.25, accuracy: 1e-15)
        XCTAssertEqual(s.n, 4)
        XCTAssertNil(MultipleChoiceScores(questions: [right]).accStderr, "one question has no standard error")
    }

    // MARK: scoring

    func testTheInputDropsTheLastTokenAndKeepsTheLastMaxLengthPlusOne() {
        let r = ContinuationTokens(context: [1, 2, 3, 4, 5], continuation: [6, 7])
        XCTAssertEqual(ContinuationLogLikelihood.input(r, maxLength: 10), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(ContinuationLogLikelihood.input(r, maxLength: 3), [4, 5, 6])
    }

    func testAScoreIsTheSumOfTheContinuationsLogProbabilities() throws {
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let r = ContinuationTokens(context: [1, 403, 407], continuation: [261, 378])
        let ll = ContinuationLogLikelihood.logLikelihoods(model: model, requests: [r])[0]
        let logits = model.forward(tokens: [1, 403, 407, 261], batch: 1, length: 4).logits
        let V = model.config.vocabSize
        var expected = 0.0
        for (position, target) in [(2, 261), (3, 378)] {
            let row = (0..<V).map { Double(logits[position * V + $0]) }
            let lse = log(row.map { exp($0) }.reduce(0, +))
            expected += row[target] - lse
        }
        // The kernel's exponentials are float32 lanes summed in double: measured 2.2e-10 from the Double formula.
        XCTAssertEqual(ll, expected, accuracy: 1e-9)
    }

    /// The largest difference between any choice's log-likelihood scored `batchSizes.0` and `batchSizes.1` at a time
    /// (right padding to the longest input of each pass), the first question where they differ, and whether acc and
    /// acc_norm agree.
    func batchingDifference(model dir: URL, task url: URL, batchSizes: (Int, Int)) throws -> (worst: Double, first: String?, accEqual: Bool) {
        let source = ModelSource(path: dir.path)
        let model = try LlamaModel.load(directory: dir), tokenizer = try TokenizerLoader.load(directory: dir)
        let task = try MultipleChoiceTask(url: url)
        let a = try TaskScoringJob.score(task, model: model, source: source, tokenizer: tokenizer, batchSize: batchSizes.0, progress: nil)
        let b = try TaskScoringJob.score(task, model: model, source: source, tokenizer: tokenizer, batchSize: batchSizes.1, progress: nil)
        var worst = 0.0, first: String?
        for (x, y) in zip(a.questions, b.questions) where x.logLikelihoods != y.logLikelihoods {
            worst = max(worst, zip(x.logLikelihoods, y.logLikelihoods).map { abs($0 - $1) }.max()!)
            first = first ?? "line \(x.line): \(x.logLikelihoods) against \(y.logLikelihoods)"
        }
        return (worst, first, a.acc == b.acc && a.accNorm == b.accNorm)
    }

    func testNeitherPaddingNorNeighboursReachAnInputsLogits() throws {
        // The scorer pads each input on the right to the longest of its pass. Causal attention keeps that padding (and
        // the other rows) out of the input's positions: other padding tokens and other neighbours in a pass of the
        // same shape leave its logits identical to the bit.
        let model = try LlamaModel.load(directory: Fixtures.stories260K)
        let V = model.config.vocabSize, n = 20, T = 45, B = 4
        var generator = SeededGenerator(seed: 26)
        func random(_ count: Int) -> [Int32] { (0..<count).map { _ in Int32.random(in: 3..<Int32(V), using: &generator) } }
        let input = random(n)
        let a = model.forward(tokens: input + [Int32](repeating: 0, count: T - n) + random((B - 1) * T), batch: B, length: T).logits
        let b = model.forward(tokens: input + random(T - n) + random((B - 1) * T), batch: B, length: T).logits
        let differing = (0..<n * V).filter { a[$0] != b[$0] }.count
        XCTAssertEqual(differing, 0, "logits of the input's \(n) positions that other padding or neighbours changed")
    }

    func testBatchOneAgainstBatchEight() throws {
        // A pass of one input has fewer rows than a batched one, and OpenBLAS picks its kernels by the product's shape
        // (small-matrix kernels for small ones; our matrix–vector kernels take ≤ 16 rows): they sum in another order,
        // so one input a pass and eight agree to float32 rounding of the forward, not to the bit.
        for task in [Self.kjvEndings, Self.handwritten] {
            let (worst, first, accEqual) = try batchingDifference(model: Fixtures.stories260K, task: task, batchSizes: (1, 8))
            assertPinned("batchedTaskLogLikelihood", worst, within: Tolerance.batchedTaskLogLikelihood, "stories260K, \(task.lastPathComponent); first: \(first ?? "none")")
            XCTAssertTrue(accEqual, "acc and acc_norm with batch 1 and 8")
        }
    }

    // MARK: parity with lm-evaluation-harness

    /// Runs scripts/lm_eval_task.py (lm-eval, HF backend, float32) and our scoring on the same task and checkpoint:
    /// the same acc and acc_norm, standard errors to rounding, and every choice's log-likelihood within `tolerance`
    /// relative to max(1, |ll|).
    func assertSameAsLMEval(model dir: URL, task url: URL, tolerance: Double) throws {
        guard let python = PythonVenv.lmEval else {
            throw Fixtures.skip("no Python with torch, transformers and lm_eval (pip install lm-eval in ~/.cache/prune-dev/venv or $PRUNE_PYTHON)")
        }
        let script = try String(contentsOf: Fixtures.projectRoot.appendingPathComponent("scripts/lm_eval_task.py"), encoding: .utf8)
        let out = try PythonVenv.run(python, script: script, [dir.path, url.path])
        let theirs = try JSONSerialization.jsonObject(with: Data(out.split(separator: "\n").last!.utf8)) as! [String: Any]
        let ours = try TaskScoringJob.run(ModelSource(path: dir.path), options: TaskScoringOptions(task: url), progress: nil, log: .silent)
        let label = "\(dir.lastPathComponent), \(url.lastPathComponent)"
        let theirLLs = theirs["loglikelihoods"] as! [[Double]]
        XCTAssertEqual(theirLLs.count, ours.n, label)
        // lm-eval sums the float32 log-softmax in float32: a sum of a few hundred nats is itself rounded to ~3e-5
        // (its ulp), so the bound is on |Δ| / max(1, |ll|); the worst |Δ| is printed beside it.
        var worst = 0.0, worstAbsolute = 0.0
        for (q, lls) in zip(ours.questions, theirLLs) {
            XCTAssertEqual(q.logLikelihoods.count, lls.count, "\(label) line \(q.line): choices")
            for (a, b) in zip(q.logLikelihoods, lls) {
                worst = max(worst, abs(a - b) / max(1, abs(b)))
                worstAbsolute = max(worstAbsolute, abs(a - b))
            }
        }
        let n = Double(ours.n)
        print("lm-eval parity \(label): acc ours \(ours.acc) lm-eval \(theirs["acc"]!), acc_norm ours \(ours.accNorm) lm-eval \(theirs["acc_norm"]!), "
              + "log-likelihoods max |Δ| \(worstAbsolute)")
        assertPinned("taskLogLikelihood", worst, within: tolerance, label)
        // One question moved is 1/n: any difference in the counts shows.
        XCTAssertEqual(ours.acc, theirs["acc"] as! Double, accuracy: 0.5 / n, label)
        XCTAssertEqual(ours.accNorm, theirs["acc_norm"] as! Double, accuracy: 0.5 / n, label)
        XCTAssertEqual(ours.accStderr ?? .nan, theirs["acc_stderr"] as! Double, accuracy: 1e-12, label)
        XCTAssertEqual(ours.accNormStderr ?? .nan, theirs["acc_norm_stderr"] as! Double, accuracy: 1e-12, label)
    }

    func testSameAsLMEvalOnStories260K() throws {
        try assertSameAsLMEval(model: Fixtures.stories260K, task: Self.kjvEndings, tolerance: Tolerance.taskLogLikelihood)
        try assertSameAsLMEval(model: Fixtures.stories260K, task: Self.handwritten, tolerance: Tolerance.taskLogLikelihood)
    }

    func testSameAsLMEvalOnSmolLM2() throws {
        let dir = try Fixtures.smolLM2()
        // lm-eval runs SmolLM2-135M at a few seconds a choice on two cores: the first 50 questions of the KJV task here
        // (the whole of it agrees as well: README, "Zero-shot task scoring").
        let scratch = try Fixtures.temporaryDirectory("kjv-slice")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let slice = scratch.appendingPathComponent("kjv-endings-first50.jsonl")
        let lines = try String(contentsOf: Self.kjvEndings, encoding: .utf8).split(separator: "\n").prefix(50)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: slice)
        try assertSameAsLMEval(model: dir, task: slice, tolerance: Tolerance.taskLogLikelihood)
        try assertSameAsLMEval(model: dir, task: Self.handwritten, tolerance: Tolerance.taskLogLikelihood)
    }
}
