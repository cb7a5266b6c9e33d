// Chat templates rendered as transformers renders them (Jinja2 with trim_blocks and lstrip_blocks):
// SmolLM2's shipped template against the tokenizers library's reference rendering, and Llama-3 Instruct,
// Llama-2-chat and small syntax probes whose expected output comes from jinja2 3.1.6.
import Foundation
import Support
import TestSupport
import Tokenizers
import XCTest

final class ChatTemplateTests: XCTestCase {
    private static let llama3Instruct = """
        {% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' \
        + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}\
        {% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}\
        {{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}
        """

    private static let llama2Chat = #"""
        {% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}\#
        {% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}\#
        {% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\#
        {{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}\#
        {% if loop.index0 == 0 and system_message != false %}\#
        {% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}\#
        {% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}\#
        {{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}\#
        {{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}
        """#

    private static let conversation = [
        ChatMessage(role: "system", content: "You are terse."),
        ChatMessage(role: "user", content: "Hi there "),
        ChatMessage(role: "assistant", content: " Hello!"),
        ChatMessage(role: "user", content: "2+2?"),
    ]

    private func render(_ template: String, _ messages: [ChatMessage] = conversation, generationPrompt: Bool = true,
                        bos: String? = "<s>", eos: String? = "</s>") throws -> String {
        try ChatTemplate.render(template, messages: messages, addGenerationPrompt: generationPrompt,
                                bosToken: bos, eosToken: eos)
    }

    // MARK: shipped templates

    func testSmolLM2TemplateRendersReference() throws {
        let directory = Fixtures.file("tokenizers/smollm2")
        let data = try Data(contentsOf: directory.appendingPathComponent("reference.json"))
        let reference = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let example = try XCTUnwrap(reference["chat_template_example"] as? [String: Any])
        let messages = try XCTUnwrap(example["messages"] as? [[String: String]]).map {
            ChatMessage(role: $0["role"] ?? "", content: $0["content"] ?? "")
        }
        let tokenizer = try BPETokenizer(directory: directory)
        let template = try XCTUnwrap(tokenizer.chatTemplate, "tokenizer_config.json has a chat_template")
        let rendered = try ChatTemplate.render(
            template, messages: messages, addGenerationPrompt: try XCTUnwrap(example["add_generation_prompt"] as? Bool),
            bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken)
        XCTAssertEqual(rendered, try XCTUnwrap(example["rendered"] as? String))
    }

    func testSmolLM2TemplateKeepsAGivenSystemMessage() throws {
        let template = try XCTUnwrap(try BPETokenizer(directory: Fixtures.file("tokenizers/smollm2")).chatTemplate)
        XCTAssertEqual(try render(template, Array(Self.conversation.prefix(2)), generationPrompt: false),
                       "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi there <|im_end|>\n")
    }

    func testLlama3InstructTemplate() throws {
        XCTAssertEqual(
            try render(Self.llama3Instruct, bos: "<|begin_of_text|>", eos: "<|eot_id|>"),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n")
    }

    func testLlama2ChatTemplate() throws {
        XCTAssertEqual(try render(Self.llama2Chat, generationPrompt: false),
                       "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST] Hello! </s><s>[INST] 2+2? [/INST]")
        XCTAssertEqual(try render(Self.llama2Chat, Array(Self.conversation.dropFirst()), generationPrompt: false),
                       "<s>[INST] Hi there [/INST] Hello! </s><s>[INST] 2+2? [/INST]")
    }

    func testRaiseExceptionBecomesAnError() {
        let messages = [ChatMessage(role: "user", content: "a"), ChatMessage(role: "user", content: "b")]
        XCTAssertThrowsError(try render(Self.llama2Chat, messages)) { error in
            XCTAssertTrue("\(error)".contains("Conversation roles must alternate"), "\(error)")
        }
    }

    // MARK: Jinja behaviour (expected strings from jinja2 3.1.6 with trim_blocks and lstrip_blocks)

    func testWhitespaceControl() throws {
        XCTAssertEqual(try render("  {% if true %}\n  a\n  {% endif %}\nb\n"), "  a\nb")
        XCTAssertEqual(try render("x  {% if true %}y{% endif %}"), "x  y")
        XCTAssertEqual(try render("{#- c -#}\n  {{- 'a' -}}  \n {%- if true -%} b {%- endif %}\n\nc"), "ab\nc")
        XCTAssertEqual(try render("{%+ if true %}x{% endif +%}\n y"), "x\n y")
        XCTAssertEqual(try render("  {# c #}\nz"), "z")
    }

    func testScopingFollowsJinja() throws {
        // A set inside a loop lasts one iteration; a namespace carries values out of the loop.
        XCTAssertEqual(try render("{% for m in messages %}{% if loop.first %}{% set x = 1 %}{% endif %}[{{ x }}]{% endfor %}[{{ x }}]"),
                       "[1][][][][]")
        XCTAssertEqual(try render("{% set x = 5 %}{% for m in [1, 2] %}{% set x = m %}{{ x }}{% endfor %}{{ x }}"), "125")
        XCTAssertEqual(try render("{% set ns = namespace(a=1) %}{% for x in [1,2] %}{% set ns.a = ns.a + x %}{% endfor %}{{ ns.a }}"), "4")
    }

    func testExpressionsFiltersAndTests() throws {
        XCTAssertEqual(try render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 'ab' * 2 }} {{ 4 / 2 }}"),
                       "3 -4 2 3.5 1024 abab 2.0")
        XCTAssertEqual(try render("{{ 1 ~ none ~ true ~ 1.5 ~ [1,'a'] ~ {'a': \"it's\"} }}"),
                       "1NoneTrue1.5[1, 'a']{'a': \"it's\"}")
        XCTAssertEqual(try render("{{ 'a' 'b' }} {{ 'x\\ny\\'z\\u00e9' }}"), "ab x\ny'zé")
        XCTAssertEqual(try render("{{ [1,2,3][1:] }} {{ 'hello'[::-1] }} {{ [1,2,3][-1] }}"), "[2, 3] olleh 3")
        XCTAssertEqual(try render("{{ '  x '|trim }}|{{ ' y '.strip() }}|{{ 'abc'|upper }}|{{ [1,2]|length }}|{{ u|length }}|{{ u|default('dd') }}|{{ ''|default('e', true) }}"),
                       "x|y|ABC|2|0|dd|e")
        XCTAssertEqual(try render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ not 1 == 2 }} {{ 'a' in 'cat' }} {{ 2 not in [1] }}"),
                       "True False True True True")
        XCTAssertEqual(try render("{{ x if x else 'no' }} {{ 'yes' if true }}|"), "no yes|")
        XCTAssertEqual(try render("{% for a, b in {'p': 1, 'q': 2}.items() %}{{ a }}={{ b }};{% endfor %}"), "p=1;q=2;")
        XCTAssertEqual(try render("{% for x in [1,2,3,4] if x is even %}{{ loop.index }}{{ x }}{% else %}none{% endfor %}"), "1224")
        XCTAssertEqual(try render("{% for x in [] %}{{ x }}{% else %}none{% endfor %}"), "none")
        XCTAssertEqual(try render("{% for x in [1,2,3] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}"), "13")
        XCTAssertEqual(try render("{% for m in ['a', 'b'] %}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}"),
                       "221b;210a;")
        XCTAssertEqual(try render("{{ messages[0]['role'] is defined }} {{ messages[9] is defined }} {{ bos_token is none }}"),
                       "True False False")
    }

    func testUndefinedTokensAreUndefined() throws {
        XCTAssertEqual(try render("{{ bos_token }}|{{ bos_token is defined }}", bos: nil), "|False")
        XCTAssertThrowsError(try render("{{ bos_token + 'x' }}", bos: nil))
    }

    // MARK: refusals

    func testUnsupportedSyntaxIsNamed() {
        let cases = [
            ("{% macro greet(name) %}hi{% endmacro %}", "macro"),
            ("{% include 'other.jinja' %}", "include"),
            ("{{ messages | tojson }}", "tojson"),
            ("{{ 3 is divisibleby(3) }}", "divisibleby"),
            ("{{ strftime_now('%Y') }}", "strftime_now"),
            ("{% set x %}block{% endset %}", "block {% set %}"),
        ]
        for (template, name) in cases {
            XCTAssertThrowsError(try render(template), template) { error in
                XCTAssertTrue((error as? PruneError)?.problem.contains(name) ?? false, "\(error) should name \(name)")
            }
        }
    }

    func testSyntaxErrorsAreReported() {
        for template in ["{% if true %}unclosed", "{{ 1 + }}", "{% for x in %}{% endfor %}", "{{ 'open }}", "{% endif %}"] {
            XCTAssertThrowsError(try render(template), template) { error in
                XCTAssertEqual((error as? PruneError)?.subject, "chat template")
            }
        }
    }

    // MARK: reading the template

    func testTemplateListInConfigTakesDefault() throws {
        let directory = try Fixtures.temporaryDirectory("chat-template-list")
        defer { try? FileManager.default.removeItem(at: directory) }
        let fixture = Fixtures.file("tokenizers/smollm2")
        try FileManager.default.copyItem(at: fixture.appendingPathComponent("tokenizer.json"),
                                         to: directory.appendingPathComponent("tokenizer.json"))
        let config = #"{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ 1 }}"}]}"#
        try config.write(to: directory.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let tokenizer = try BPETokenizer(directory: directory)
        XCTAssertEqual(tokenizer.chatTemplate, "D{{ 1 }}")
        XCTAssertEqual(try ChatTemplate.render(XCTUnwrap(tokenizer.chatTemplate), messages: [], addGenerationPrompt: false,
                                               bosToken: nil, eosToken: nil), "D1")
    }
}
