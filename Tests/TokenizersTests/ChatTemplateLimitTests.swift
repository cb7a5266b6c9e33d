// A chat template comes with a checkpoint, i.e. from anyone: one that would run for ever, fill memory or
// overflow an integer is refused with an error, never a trap or a hang. (Each case is also kept as a
// regression input of the ChatTemplate fuzz target, Tests/Fuzz/Regressions/ChatTemplate.)
import Support
import Tokenizers
import XCTest

final class ChatTemplateLimitTests: XCTestCase {
    func render(_ template: String) throws -> String {
        try ChatTemplate.render(template, messages: [ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true,
                                bosToken: "<s>", eosToken: "</s>")
    }

    func assertRefused(_ template: String, saying phrase: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try render(template), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(phrase), "\(error)", file: file, line: line)
        }
    }

    func testHugeRepetitionsRangesAndLoopsAreErrors() {
        assertRefused("{{ 'ab' * 1000000000000 }}", saying: "longer than")
        assertRefused("{{ [1, 2] * 1000000000000 }}", saying: "more than")
        assertRefused("{% for i in range(1000000000000) %}{% endfor %}", saying: "range() of more than")
        assertRefused("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", saying: "steps")
    }

    func testIntegerEdgeCasesAreErrorsOrExact() throws {
        assertRefused("{{ (-9223372036854775807 - 1) // -1 }}", saying: "overflow")
        assertRefused("{{ 9223372036854775807 + 1 }}", saying: "overflow")
        XCTAssertEqual(try render("{{ 1 ** 1000000000000000000 }} {{ (-1) ** 1000000000000000001 }} {{ 0 ** 0 }}"), "1 -1 1")
        XCTAssertEqual(try render("{{ 'ab' * 3 }}{{ 'x' * -2 }}|{{ range(0, 10, 4) | join(',') }}"), "ababab|0,4,8")
    }
}
