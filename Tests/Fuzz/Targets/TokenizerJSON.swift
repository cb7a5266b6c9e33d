// Fuzz target: tokenizer.json bytes through the structural check (TokenizerFileCheck) and the real
// byte-level BPE loader; a tokenizer that loads encodes and decodes a fixed text.
import Checkpoint
import Foundation
import Tokenizers

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let url = FuzzInput.file("tokenizer.json", FuzzInput.bytes(data, size))
    _ = try? TokenizerFileCheck.checkTokenizerJSON(url, vocabularySize: 1 << 20)
    guard let tokenizer = try? BPETokenizer(directory: FuzzInput.scratch) else { return 0 }
    let ids = tokenizer.encode("Hello world, café ✓ <|im_start|>  12345", addSpecialTokens: true)
    _ = tokenizer.decode(ids, skipSpecialTokens: false)
    _ = tokenizer.pieces(ids)
    return 0
}
