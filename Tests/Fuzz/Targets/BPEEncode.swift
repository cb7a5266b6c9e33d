// Fuzz target: arbitrary bytes (as lossy UTF-8) encoded by SmolLM2's byte-level BPE tokenizer, decoded
// back and streamed; streaming must print exactly what decoding the whole sequence gives. (The text itself
// need not come back: as in Hugging Face tokenizers, bytes missing from the vocabulary, such as 0x1D in
// SmolLM2's, are dropped when there is no unk token.)
import Foundation
import Tokenizers

let tokenizer: BPETokenizer = {
    do { return try BPETokenizer(directory: FuzzInput.root.appendingPathComponent("Tests/Fixtures/tokenizers/smollm2")) }
    catch { fatalError("cannot load the SmolLM2 tokenizer fixture: \(error)") }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: FuzzInput.bytes(data, size), as: UTF8.self)
    let ids = tokenizer.encode(text, addSpecialTokens: false)
    _ = tokenizer.decode(ids, skipSpecialTokens: false)
    // Streaming decodes the whole prefix at every id (quadratic): the first 32 ids are enough here.
    let head = Array(ids.prefix(32))
    let back = tokenizer.decode(head, skipSpecialTokens: false)
    var decoder = StreamingDecoder(tokenizer: tokenizer, prompt: [], skipSpecialTokens: false)
    var streamed = ""
    for id in head { streamed += decoder.append(id) }
    streamed += decoder.finish()
    if streamed != back {
        fatalError("streaming differs: \(text.debugDescription) → \(head) → \(back.debugDescription) / \(streamed.debugDescription)")
    }
    return 0
}
