// Fuzz target: arbitrary bytes (as lossy UTF-8) encoded by the Llama 2 SentencePiece tokenizer, decoded
// back, pieces listed, and streamed.
import Foundation
import Tokenizers

let tokenizer: SentencePieceTokenizer = {
    do { return try SentencePieceTokenizer(model: FuzzInput.root.appendingPathComponent("Tests/Fixtures/tokenizers/llama2/tokenizer.model")) }
    catch { fatalError("cannot load the Llama 2 tokenizer fixture: \(error)") }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: FuzzInput.bytes(data, size), as: UTF8.self)
    let ids = tokenizer.encode(text, addSpecialTokens: true)
    _ = tokenizer.decode(ids, skipSpecialTokens: true)
    _ = tokenizer.pieces(ids)
    var decoder = StreamingDecoder(tokenizer: tokenizer, prompt: [])
    // Streaming decodes the whole prefix at every id (quadratic): the first 32 ids are enough here.
    for id in ids.prefix(32) { _ = decoder.append(id) }
    _ = decoder.finish()
    return 0
}
