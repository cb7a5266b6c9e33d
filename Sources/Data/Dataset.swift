// Dataset files: plain text (.txt, .text, .md: one document), JSONL with a "text" field, or JSONL with
// pre-tokenized "input_ids" (so any tokenizer's output can be used). Other extensions are refused
// (DatasetFormat).
import Foundation
import Support
import Tokenizers

/// One dataset record: text to tokenize, or ids already tokenized.
public enum DatasetRecord: Equatable {
    case text(String)
    case ids([Int32])
}

/// A loaded dataset file.
public struct Dataset {
    public let url: URL
    public let records: [DatasetRecord]

    /// Reads `url`; an empty file, a line that is not JSON, or a line without "text"/"input_ids" is an error.
    public init(url: URL) throws {
        self.url = url
        let format = try DatasetFormat(of: url)
        let content = try JSONLines.text(of: url, what: "dataset")
        if format == .jsonLines {
            var recs: [DatasetRecord] = []
            for entry in try JSONLines.objects(in: content, of: url) {
                let obj = entry.object
                if let ids = obj["input_ids"] as? [Any] {
                    var out: [Int32] = []
                    for v in ids {
                        guard let n = v as? NSNumber, let x = Int32(exactly: n.doubleValue) else {
                            throw PruneError(file: url, "line \(entry.line): input_ids must be integers")
                        }
                        out.append(x)
                    }
                    recs.append(.ids(out))
                } else if let text = obj["text"] as? String {
                    recs.append(.text(text))
                } else {
                    throw PruneError(file: url, "line \(entry.line) has neither a \"text\" string nor \"input_ids\"")
                }
            }
            records = recs
        } else {
            records = content.isEmpty ? [] : [.text(content)]
        }
        let nonEmpty = records.contains { rec in
            switch rec {
            case .text(let s): !s.isEmpty
            case .ids(let ids): !ids.isEmpty
            }
        }
        guard nonEmpty else { throw PruneError(file: url, "dataset is empty") }
    }

    /// Token ids of every record (text records through `tokenizer`, with its BOS rule).
    public func tokenized(with tokenizer: Tokenizer?) throws -> [[Int32]] {
        try records.map { rec in
            switch rec {
            case .ids(let ids): return ids
            case .text(let s):
                guard let tokenizer else {
                    throw PruneError(file: url, "dataset holds text but the model has no tokenizer; give pre-tokenized \"input_ids\"")
                }
                return tokenizer.encode(s)
            }
        }.filter { !$0.isEmpty }
    }

    /// Refuses ids outside 0..<vocabularySize (a dataset tokenized for another model), naming the record.
    public func checkIDs(_ sequences: [[Int32]], vocabularySize: Int) throws {
        for (i, seq) in sequences.enumerated() {
            if let bad = seq.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
                throw PruneError(file: url, "record \(i + 1) has token id \(bad) outside the model's vocabulary (0…\(vocabularySize - 1))")
            }
        }
    }
}
