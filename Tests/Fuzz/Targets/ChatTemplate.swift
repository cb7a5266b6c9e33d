// Fuzz target: the input as a Jinja chat template, rendered for a fixed two-turn conversation; then the
// input as message contents rendered through SmolLM2's (ChatML) template.
import Foundation
import Tokenizers

let messages = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi <b>\n{{ x }}"),
                ChatMessage(role: "assistant", content: "Hello.")]
let chatML = """
{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
"""

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: FuzzInput.bytes(data, size), as: UTF8.self)
    _ = try? ChatTemplate.render(text, messages: messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
    let contents = text.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
    let conversation = contents.enumerated().map { ChatMessage(role: $0 % 2 == 0 ? "user" : "assistant", content: $1) }
    _ = try? ChatTemplate.render(chatML, messages: conversation, addGenerationPrompt: true, bosToken: nil, eosToken: nil)
    return 0
}
