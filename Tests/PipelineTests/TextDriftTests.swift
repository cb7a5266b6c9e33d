// The drift check on continuations a user saw: the healed model's stutter (", And And Abrahhhhah, and And",
// once reported "ok") is flagged, byte soup is flagged, and plain English, including its legitimate
// repeats ("had had", "and … and"), passes.
import Foundation
@testable import Recipes
import XCTest

final class TextDriftTests: XCTestCase {
    /// The full model's continuation in the quickstart report, the original the others were measured against.
    let original = ", there was a little girl named Lily. She loved to play with her toys and her to"

    func testTheReportedStutterIsFlagged() {
        let drift = TextDrift.measure(", And And Abrahhhhah, and And", original: original)
        XCTAssertTrue(drift.flags.contains("repeated words"), "\(drift)")
        XCTAssertTrue(drift.flags.contains("character run"), "\(drift)")
        // The quickstart's other healed continuation: one "And And", but "and" is three of five words.
        XCTAssertEqual(TextDrift.measure(" Abrah, And And Abrah, And ", original: original).flags, ["repeated words"])
    }

    func testPlainEnglishPasses() {
        let english = "In the beginning God created the heaven and the earth. And the earth was without form, and void."
        XCTAssertEqual(TextDrift.measure(english, original: original).flags, [])
        XCTAssertEqual(TextDrift.measure(english, original: english).flags, [])
        XCTAssertEqual(TextDrift.measure("He had had enough of the rain, and the wind, and the cold.", original: original).flags, [],
                       "one word after itself is English")
        XCTAssertEqual(TextDrift.measure("In the year 1000000000 the moon shone over the quiet little town.", original: original).flags, [], "a long number is no run")
        XCTAssertEqual(TextDrift.measure("She said caf\u{FFFD}", original: original).flags, [],
                       "a character cut in half at the token budget is not soup")
    }

    func testByteSoupIsFlagged() {
        XCTAssertTrue(TextDrift.measure("\u{FFFD}\u{FFFD}#3@!\u{FFFD}\u{FFFD}~ ^&*", original: original).flags.contains("byte soup"))
        XCTAssertTrue(TextDrift.measure("the \u{FFFD} dog ran", original: original).flags.contains("byte soup"), "an invalid byte inside")
        XCTAssertTrue(TextDrift.measure("the \u{7} dog ran", original: original).flags.contains("byte soup"), "a control character")
        let symbols = TextDrift.measure("}{ 3# @; 9; ~) )( %^ 1- ab", original: original)
        XCTAssertTrue(symbols.flags.contains("byte soup"), "mostly non-letters where the original is words: \(symbols)")
        XCTAssertEqual(TextDrift.measure("12, 13, 14, 15", original: "1, 2, 3, 4, 5").flags, [],
                       "numbers where the original wrote numbers")
    }

    func testRunsOfOneCharacterAndRepeatedThreeGrams() {
        XCTAssertEqual(TextDrift.measure("and so it went on into the night, they said!!!!!!!!", original: original).flags, ["character run"])
        XCTAssertEqual(TextDrift.measure("and so it went on into the night ----", original: original).flags, [], "a short rule is no run")
        let loop = TextDrift.measure("the king of the land, the king of the land, the king of the land", original: original)
        XCTAssertTrue(loop.flags.contains("repetitive"), "\(loop)")
        XCTAssertGreaterThan(loop.repetition, TextDrift.repetitionThreshold)
    }
}
