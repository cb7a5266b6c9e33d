// Picks the tokenizer of a checkpoint directory: tokenizer.model → SentencePiece, else tokenizer.json.
import Foundation
import Support

/// Loads the tokenizer a checkpoint ships.
public enum TokenizerLoader {
    /// tokenizer.model (SentencePiece) if present, else tokenizer.json (byte-level BPE).
    public static func load(directory: URL) throws -> Tokenizer {
        let fm = FileManager.default
        let spm = directory.appendingPathComponent("tokenizer.model")
        if fm.fileExists(atPath: spm.path) { return try SentencePieceTokenizer(model: spm) }
        let json = directory.appendingPathComponent("tokenizer.json")
        if fm.fileExists(atPath: json.path) { return try BPETokenizer(directory: directory) }
        throw PruneError(file: directory, "no tokenizer.model or tokenizer.json (use a dataset with pre-tokenized \"input_ids\" instead)")
    }

    /// The checkpoint's tokenizer, or nil when it ships none (pre-tokenized data needs none).
    public static func loadIfPresent(directory: URL) throws -> Tokenizer? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: directory.appendingPathComponent("tokenizer.model").path)
                || fm.fileExists(atPath: directory.appendingPathComponent("tokenizer.json").path) else { return nil }
        return try load(directory: directory)
    }
}
