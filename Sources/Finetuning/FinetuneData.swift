// The windows a finetuning run trains and evaluates on: the training file's records tokenized (loss masks as
// each record kind says), packed or one per window, and a held-out part (the --valid file, or every 20th record
// of the training file; every 20th window when the file is one document) that never trains.
import Data
import Foundation
import Support
import Tokenizers

/// Training and held-out windows, with what a person should know about them.
public struct FinetuneData {
    public let train: [TrainingWindow]
    public let heldOut: [TrainingWindow]
    /// Lines for the log: records, tokens, windows, what was held out.
    public let summary: [String]

    /// Reads and tokenizes `options.dataset` (and `options.valid`). Ids outside `vocabularySize` are refused
    /// naming the file.
    public static func prepare(_ options: FinetuneOptions, tokenizer: Tokenizer?, vocabularySize: Int) throws -> FinetuneData {
        let trainURL = URL(fileURLWithPath: options.dataset)
        let file = try TrainingDataFile(url: trainURL)
        let records = try tokenize(file, tokenizer: tokenizer, vocabularySize: vocabularySize)
        var summary: [String] = []
        var trainRecords = records, heldRecords: [TokenizedRecord] = []
        var splitWindows = false
        if let valid = options.valid {
            let validFile = try TrainingDataFile(url: URL(fileURLWithPath: valid))
            heldRecords = try tokenize(validFile, tokenizer: tokenizer, vocabularySize: vocabularySize)
            summary.append("held out: \(valid) (\(heldRecords.count) records)")
        } else if records.count >= 2 {
            let split = HeldOutSplit(count: records.count, fraction: 0.05)
            trainRecords = split.train.map { records[$0] }
            heldRecords = split.heldOut.map { records[$0] }
            summary.append("held out: " + split.describe("records of \(file.url.lastPathComponent)", numbered: "line") { file.lines[$0] })
        } else {
            splitWindows = true
        }
        var train = windows(trainRecords, options, tokenizer)
        var held = windows(heldRecords, options, tokenizer)
        if splitWindows {
            let split = HeldOutSplit(count: train.count, fraction: 0.05)
            held = split.heldOut.map { train[$0] }
            train = split.train.map { train[$0] }
            summary.append("held out: " + split.describe("windows of the single document \(file.url.lastPathComponent)", numbered: "window"))
        }
        let tokens = trainRecords.reduce(0) { $0 + $1.ids.count }
        let counted = train.reduce(0) { $0 + $1.countedTargets }
        summary.insert("data: \(trainURL.path): \(trainRecords.count) records, \(tokens) tokens → \(train.count) windows of \(options.context)"
                       + " (\(options.packing ? "packed" : "one record per window")), \(counted) counted targets", at: 0)
        guard !train.isEmpty else {
            throw PruneError(file: trainURL, "no complete window of \(options.context) tokens (\(tokens) tokens in all); lower --context")
        }
        return FinetuneData(train: train, heldOut: held, summary: summary)
    }

    static func tokenize(_ file: TrainingDataFile, tokenizer: Tokenizer?, vocabularySize: Int) throws -> [TokenizedRecord] {
        let t = RecordTokenizer(tokenizer: tokenizer, file: file.url)
        return try zip(file.records, file.lines).map { record, line in
            let r = try t.tokenize(record, line: line)
            if let bad = r.ids.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
                throw PruneError(file: file.url, "line \(line): token id \(bad) is outside the model's vocabulary (0…\(vocabularySize - 1))")
            }
            return r
        }
    }

    static func windows(_ records: [TokenizedRecord], _ options: FinetuneOptions, _ tokenizer: Tokenizer?) -> [TrainingWindow] {
        if options.packing { return TrainingWindow.packed(records, context: options.context).windows }
        return TrainingWindow.unpacked(records, context: options.context, padID: tokenizer?.eosTokenID ?? 0).windows
    }
}
