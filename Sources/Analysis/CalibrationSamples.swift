// The calibration set of an analysis: the first N records of a dataset with at least two tokens (one
// prediction), each cut to its first T tokens.
import Data
import Foundation
import Support
import Tokenizers

/// Token sequences an analysis runs on.
public enum CalibrationSamples {
    /// The first `count` records of `dataset` that give two or more tokens, truncated to `context` tokens.
    /// Text records go through `tokenizer` with its BOS rule; pre-tokenized records are taken as they are.
    /// Only the records needed are tokenized.
    public static func select(from dataset: Dataset, tokenizer: Tokenizer?, count: Int, context: Int) throws -> [[Int32]] {
        precondition(count >= 1 && context >= 2, "need count ≥ 1 and context ≥ 2")
        var samples: [[Int32]] = []
        for record in dataset.records where samples.count < count {
            let ids: [Int32]
            switch record {
            case .ids(let given): ids = given
            case .text(let text):
                guard let tokenizer else {
                    throw PruneError(file: dataset.url, "dataset holds text but the model has no tokenizer; give pre-tokenized \"input_ids\"")
                }
                ids = tokenizer.encode(text)
            }
            if ids.count >= 2 { samples.append(Array(ids.prefix(context))) }
        }
        guard !samples.isEmpty else { throw PruneError(file: dataset.url, "no record has two or more tokens") }
        return samples
    }
}
