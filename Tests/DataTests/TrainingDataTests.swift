// Training data: each record kind's label mask counts exactly the tokens it should (all of a text, the
// completion of a prompt/completion pair, the assistant turns of a chat), packing joins documents with EOS
// and cuts windows at the right places, the held-out split is the same every time, and the batcher's
// saved position restores the exact batch sequence.
import Data
import Foundation
import Support
import TestSupport
import Tokenizers
import XCTest

final class TrainingDataTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("training-data") }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    /// The shipped stories260K tokenizer (SentencePiece, BOS 1, EOS 2).
    func stories() throws -> Tokenizer {
        try TokenizerLoader.load(directory: Fixtures.projectRoot.appendingPathComponent("Checkpoints/stories260K"))
    }

    func write(_ lines: [String], _ name: String) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func tokenized(_ url: URL, _ tokenizer: Tokenizer?) throws -> [TokenizedRecord] {
        let file = try TrainingDataFile(url: url)
        let t = RecordTokenizer(tokenizer: tokenizer, file: url)
        return try zip(file.records, file.lines).map { try t.tokenize($0, line: $1) }
    }

    func testTextRecordsCountEveryTokenAndEndWithEOS() throws {
        let t = try stories()
        let url = try write([#"{"text": "Once upon a time"}"#], "text.jsonl")
        let r = try XCTUnwrap(try tokenized(url, t).first)
        XCTAssertEqual(r.ids, t.encode("Once upon a time") + [2])
        XCTAssertEqual(r.ids.first, 1, "BOS as the tokenizer adds it")
        XCTAssertTrue(r.counted.allSatisfy { $0 })
    }

    func testPromptCompletionCountsTheCompletionAndItsEOSOnly() throws {
        let t = try stories()
        let url = try write([#"{"prompt": "Once upon a time,", "completion": " there was a little girl named Lily."}"#], "pc.jsonl")
        let r = try XCTUnwrap(try tokenized(url, t).first)
        let prompt = t.encode("Once upon a time,")
        XCTAssertEqual(Array(r.ids.prefix(prompt.count)), prompt)
        XCTAssertEqual(r.counted, r.ids.indices.map { $0 >= prompt.count })
        let completion = zip(r.ids, r.counted).filter(\.1).map(\.0)
        XCTAssertEqual(completion.last, 2)
        XCTAssertEqual(t.decode(Array(completion.dropLast()), skipSpecialTokens: true).trimmingCharacters(in: .whitespaces),
                       "there was a little girl named Lily.")
        // In a window the targets are the completion's tokens, at the positions before them.
        let window = TrainingWindow.unpacked([r], context: 64, padID: 0).windows[0]
        XCTAssertEqual(window.targets.filter { $0 != -100 }, completion)
        XCTAssertEqual(window.countedTargets, completion.count)
        XCTAssertEqual(window.targets[prompt.count - 1], r.ids[prompt.count], "the first completion token is predicted from the prompt's last")
        XCTAssertEqual(window.targets[prompt.count - 2], -100)
    }

    func testChatCountsTheAssistantTurnsOnly() throws {
        let dir = Fixtures.file("tokenizers/smollm2")
        let t = try BPETokenizer(directory: dir)
        let url = try write([#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of France?"}, {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And of Italy?"}, {"role": "assistant", "content": "Rome, since 1871."}]}"#], "chat.jsonl")
        let r = try XCTUnwrap(try tokenized(url, t).first)
        // Counted tokens form exactly two runs, each an assistant reply and its end-of-turn marker.
        var runs: [[Int32]] = []
        for (i, (id, counted)) in zip(r.ids, r.counted).enumerated() where counted {
            if i > 0 && r.counted[i - 1] { runs[runs.count - 1].append(id) } else { runs.append([id]) }
        }
        XCTAssertEqual(runs.map { t.decode($0) }, ["Paris.<|im_end|>", "Rome, since 1871.<|im_end|>"])
        XCTAssertEqual(t.decode(r.ids), try ChatTemplate.render(t.chatTemplate!, messages: [
            ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "What is the capital of France?"),
            ChatMessage(role: "assistant", content: "Paris."), ChatMessage(role: "user", content: "And of Italy?"),
            ChatMessage(role: "assistant", content: "Rome, since 1871.")], addGenerationPrompt: false, bosToken: nil, eosToken: "<|im_end|>"))
        XCTAssertFalse(r.counted.last!, "the newline after the last <|im_end|> is not a label")
    }

    func testPackingJoinsDocumentsWithEOSAndCutsWindows() throws {
        let url = try write([#"{"input_ids": [1, 10, 11]}"#, #"{"input_ids": [1, 12]}"#, #"{"input_ids": [1, 13, 14, 15, 2]}"#], "ids.jsonl")
        let records = try tokenized(url, nil).map { $0 }
        XCTAssertEqual(records.map(\.ids), [[1, 10, 11], [1, 12], [1, 13, 14, 15, 2]], "no tokenizer, no EOS known: nothing appended")
        let eos = RecordTokenizer(tokenizer: nil, eosTokenID: 2, file: url)
        let file = try TrainingDataFile(url: url)
        let withEOS = try zip(file.records, file.lines).map { try eos.tokenize($0, line: $1) }
        XCTAssertEqual(withEOS.map(\.ids), [[1, 10, 11, 2], [1, 12, 2], [1, 13, 14, 15, 2]], "EOS after each, not doubled")
        // Stream 1 10 11 2 1 12 2 1 13 14 15 2 (12 tokens) in windows of 5: two windows, 2 tokens dropped.
        let (windows, dropped) = TrainingWindow.packed(withEOS, context: 5)
        XCTAssertEqual(dropped, 2)
        XCTAssertEqual(windows.map(\.tokens), [[1, 10, 11, 2, 1], [12, 2, 1, 13, 14]])
        XCTAssertEqual(windows.map(\.targets), [[10, 11, 2, 1, -100], [2, 1, 13, 14, -100]])
        // Masks travel with their tokens across document boundaries.
        let masked = [TokenizedRecord(ids: [1, 5, 6], counted: [false, false, true]), TokenizedRecord(ids: [1, 7, 8], counted: [false, true, true])]
        XCTAssertEqual(TrainingWindow.packed(masked, context: 6).windows[0].targets, [-100, 6, -100, 7, 8, -100])
    }

    func testNoPackingTruncatesAndPadsWithUncountedTargets() throws {
        let records = [TokenizedRecord(ids: [1, 5, 6, 7, 8, 2], counted: Array(repeating: true, count: 6)),
                       TokenizedRecord(ids: [1, 9, 2], counted: [true, true, true])]
        let (windows, truncated) = TrainingWindow.unpacked(records, context: 4, padID: 0)
        XCTAssertEqual(truncated, 1)
        XCTAssertEqual(windows.map(\.tokens), [[1, 5, 6, 7], [1, 9, 2, 0]])
        XCTAssertEqual(windows.map(\.targets), [[5, 6, 7, -100], [9, 2, -100, -100]])
        XCTAssertEqual(windows.map(\.countedTargets), [3, 2])
    }

    func testHeldOutSplitIsDeterministicAndSaysWhichRecords() {
        let split = HeldOutSplit(count: 100, fraction: 0.05)
        XCTAssertEqual(split.heldOut, [19, 39, 59, 79, 99])
        XCTAssertEqual(split.train.count, 95)
        XCTAssertEqual(split, HeldOutSplit(count: 100, fraction: 0.05))
        XCTAssertEqual(split.describe("records of a.jsonl", numbered: "record"), "5 of 100 records of a.jsonl (one in 20: records 20, 40, 60, 80, 100)")
        XCTAssertEqual(HeldOutSplit(count: 3, fraction: 0.05).heldOut, [2], "a small file still holds its last record out")
        XCTAssertEqual(HeldOutSplit(count: 1, fraction: 0.05).heldOut, [])
        XCTAssertEqual(HeldOutSplit(count: 7, fraction: 0.05).describe("records of a.jsonl", numbered: "line") { [3, 5, 8, 9, 12, 20, 31][$0] },
                       "1 of 7 records of a.jsonl (one in 7: line 31)")
        XCTAssertEqual(HeldOutSplit(count: 1, fraction: 0.05).describe("windows of the single document a.txt", numbered: "window"),
                       "none of the 1 windows of the single document a.txt (too few to hold one out)")
        XCTAssertEqual(HeldOutSplit(count: 400, fraction: 0.05).describe("windows", numbered: "window"),
                       "20 of 400 windows (one in 20: windows 20, 40, 60, 80, 100, 120, …, 360, 380, 400)")
    }

    func windows(_ n: Int, length T: Int = 4) -> [TrainingWindow] {
        (0..<n).map { i in TrainingWindow(tokens: (0..<T).map { Int32(i * 10 + $0) }, targets: (0..<T).map { $0 == i % T ? -100 : Int32($0) }) }
    }

    func testBatcherShufflesPerEpochAndResumesExactly() throws {
        let w = windows(10)
        let a = try TrainingBatcher(windows: w, batchSize: 3, seed: 42)
        XCTAssertEqual(a.batchesPerEpoch, 3)
        let run = (0..<8).map { _ in a.next() }
        // Each epoch takes 9 distinct windows; epochs differ in order; the same seed gives the same order.
        XCTAssertEqual(Set(run[0..<3].flatMap(\.windows)).count, 9)
        XCTAssertEqual(run[3].position, BatchPosition(epoch: 1, index: 0))
        XCTAssertNotEqual(a.order(epoch: 0), a.order(epoch: 1))
        XCTAssertEqual(try TrainingBatcher(windows: w, batchSize: 3, seed: 42).order(epoch: 1), a.order(epoch: 1))
        XCTAssertNotEqual(try TrainingBatcher(windows: w, batchSize: 3, seed: 43).order(epoch: 0), a.order(epoch: 0))
        XCTAssertEqual(try TrainingBatcher(windows: w, batchSize: 3, seed: 42, shuffle: false).order(epoch: 5), Array(0..<10))
        // A batcher restored at a saved position continues with the same batches.
        let saved = run[5].position
        let b = try TrainingBatcher(windows: w, batchSize: 3, seed: 42)
        try b.restore(saved)
        XCTAssertEqual((5..<8).map { _ in b.next() }, Array(run[5..<8]))
        XCTAssertEqual(b.position, a.position)
        XCTAssertThrowsError(try b.restore(BatchPosition(epoch: 0, index: 4)))
        // Rows are the windows, in order; counted targets per batch and per step.
        XCTAssertEqual(run[0].tokens, run[0].windows.flatMap { w[$0].tokens })
        XCTAssertEqual(run[0].countedTargets, 9)
        let step = try TrainingBatcher(windows: w, batchSize: 2, seed: 1).nextStep(microBatches: 4)
        XCTAssertEqual(step.microBatches.count, 4)
        XCTAssertEqual(step.countedTargets, 8 * 3)
        XCTAssertThrowsError(try TrainingBatcher(windows: windows(2), batchSize: 3, seed: 0)) { XCTAssertTrue("\($0)".contains("--batch-size")) }
    }

    func testUnknownFormatsAndMixedKindsAreRefusedInOneLine() throws {
        for name in ["data.parquet", "data.csv", "data"] {
            let url = try write(["x"], name)
            XCTAssertThrowsError(try TrainingDataFile(url: url)) { error in
                XCTAssertTrue("\(error)".hasPrefix(url.path + ": unsupported dataset format"), "\(error)")
                XCTAssertFalse("\(error)".contains("\n"))
            }
        }
        let mixed = try write([#"{"text": "a"}"#, #"{"prompt": "b", "completion": "c"}"#], "mixed.jsonl")
        XCTAssertThrowsError(try TrainingDataFile(url: mixed)) { XCTAssertTrue("\($0)".contains("line 2 is a prompt/completion record but line 1 is text")) }
        let bad = try write([#"{"messages": [{"role": "user"}]}"#], "bad.jsonl")
        XCTAssertThrowsError(try TrainingDataFile(url: bad)) { XCTAssertTrue("\($0)".contains("line 1: message 1 needs")) }
        let text = try write([#"{"text": "a"}"#], "text.jsonl")
        let file = try TrainingDataFile(url: text)
        XCTAssertThrowsError(try RecordTokenizer(tokenizer: nil, file: text).tokenize(file.records[0], line: 1)) {
            XCTAssertTrue("\($0)".contains("no tokenizer"))
        }
    }
}
