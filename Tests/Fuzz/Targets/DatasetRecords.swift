// Fuzz target: a dataset file (JSONL) through Dataset (eval, analyze) and TrainingDataFile (finetune),
// then TrainingDataFile records tokenized with the Llama 2 SentencePiece tokenizer.
import Data
import Foundation
import Tokenizers

let tokenizer: SentencePieceTokenizer = {
    do { return try SentencePieceTokenizer(model: FuzzInput.root.appendingPathComponent("Tests/Fixtures/tokenizers/llama2/tokenizer.model")) }
    catch { fatalError("cannot load the Llama 2 tokenizer fixture: \(error)") }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let url = FuzzInput.file("data.jsonl", FuzzInput.bytes(data, size))
    if let dataset = try? Dataset(url: url), let sequences = try? dataset.tokenized(with: tokenizer) {
        _ = try? dataset.checkIDs(sequences, vocabularySize: 32000)
    }
    if let file = try? TrainingDataFile(url: url) {
        let records = RecordTokenizer(tokenizer: tokenizer, eosTokenID: 2, file: url)
        for (record, line) in zip(file.records, file.lines) { _ = try? records.tokenize(record, line: line) }
    }
    return 0
}
