// Renders the Jinja chat templates of tokenizer_config.json (transformers' `apply_chat_template`,
// rendering only) with a small Jinja2 interpreter: lexer → parser → evaluator in the ChatTemplate*
// files beside this one. It is enough for ChatML (SmolLM2, Qwen), Llama-3 Instruct and Llama-2-chat
// templates; any construct outside the subset below is an error naming it, never silently skipped.
//
// The subset:
// - Tags: {{ … }}, {% if/elif/else/endif %}, {% for x in … [if …] %}…{% else %}…{% endfor %} (also
//   `for k, v in d.items()`), {% set x = … %}, {% set ns.x = … %}, {% break %}, {% continue %}, {# … #}.
// - Whitespace as transformers sets Jinja up: trim_blocks, lstrip_blocks, `-` and `+` modifiers, one
//   trailing newline of the template dropped.
// - Expressions: string (Python escapes; adjacent literals join), integer, float, true/false/none,
//   list and dict literals; names; a.b, a['b'], a[0], a[-1], a[1:], a[::-1]; + - * / // % ** ~;
//   == != < <= > >= (chained), in, not in; and, or, not; `x if c else y`; parentheses.
// - loop.index, index0, revindex, revindex0, first, last, length, previtem, nextitem.
// - Filters: trim, upper, lower, capitalize, title, string, safe, length/count, first, last, list,
//   reverse, join, default/d.
// - Tests (`is` / `is not`): defined, undefined, none, true, false, boolean, string, integer, float,
//   number, mapping, sequence, iterable, odd, even.
// - Functions: raise_exception(message) (throws), namespace(k=v, …), range(…).
// - Methods: str.strip/lstrip/rstrip/upper/lower/title/capitalize/startswith/endswith/split/replace,
//   dict.items/keys/values/get.
// Not supported: macros, call/filter blocks, block set, include/extends/import, tuples, `is` tests
// without parentheses around arguments, tojson and strftime_now, autoescaping.
import Foundation
import Support

/// One message of a conversation, as chat templates see it (`message['role']`, `message['content']`).
public struct ChatMessage: Equatable {
    /// "system", "user" or "assistant" (templates may accept others).
    public var role: String
    /// The message text.
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// Renders Hugging Face chat templates (a documented Jinja2 subset; see the file header).
public enum ChatTemplate {
    /// The prompt text `template` produces for `messages`, as transformers' `apply_chat_template(…,
    /// tokenize=False)` gives it. `bos_token` / `eos_token` are undefined in the template when nil.
    /// Throws a PruneError for syntax outside the subset, errors during rendering, and
    /// `raise_exception(…)` calls made by the template.
    public static func render(_ template: String, messages: [ChatMessage], addGenerationPrompt: Bool,
                              bosToken: String?, eosToken: String?) throws -> String {
        let nodes = try Parser.parse(template)
        var globals: [String: Value] = [
            "messages": .list(messages.map { message in
                .dict(Value.Dictionary([("role", .string(message.role)), ("content", .string(message.content))]))
            }),
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let bosToken { globals["bos_token"] = .string(bosToken) }
        if let eosToken { globals["eos_token"] = .string(eosToken) }
        return try Evaluator.render(nodes, globals: globals)
    }

    /// A chat-template failure as the project reports errors.
    static func error(line: Int? = nil, _ problem: String) -> PruneError {
        PruneError("chat template", line.map { "line \($0): \(problem)" } ?? problem)
    }

    /// Python's str.isspace(), which Jinja's `-` stripping and `trim` use (Unicode White_Space plus
    /// the information separators U+001C…U+001F).
    static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
    }
}
