// The progress lines both executables print: rate and ETA from the event's figures, clocks as m:ss or h:mm:ss,
// at most two lines a second in place (a loop's last line always, with its newline), an analysis one line per
// 5 seconds into a log, every training step.
import CLISupport
import Support
import XCTest

final class ProgressPrinterTests: XCTestCase {
    var written: [String] = []

    func printer(inPlace: Bool = true) -> ProgressPrinter { ProgressPrinter(write: { self.written.append($0) }, inPlace: inPlace) }

    func eval(_ done: Int, tokens: Double, at elapsed: Double) -> ProgressEvent {
        .loop(label: "eval", done: done, total: 40, units: tokens, unit: "tok", elapsed: elapsed)
    }

    func testALoopLineSaysHowFarHowFastAndHowLongToGo() {
        let p = printer()
        p.print(eval(12, tokens: 14808, at: 12))
        XCTAssertEqual(written, ["\reval  12/40   30%  1234 tok/s  elapsed 0:12  ETA 0:28"])
    }

    func testALoopPrintsAtMostTwiceASecondAndEndsItsLastLine() {
        let p = printer()
        p.print(eval(1, tokens: 100, at: 0.1))
        p.print(eval(2, tokens: 200, at: 0.5))    // 0.4 s after the line before
        p.print(eval(3, tokens: 300, at: 0.6))
        p.print(eval(40, tokens: 4000, at: 0.7))  // the last, however soon
        XCTAssertEqual(written.map { $0.split(separator: " ")[1] }, ["1/40", "3/40", "40/40"])
        XCTAssertTrue(written.last!.hasSuffix("ETA 0:00\n"), written.last!)
        // The next loop starts a line of its own at once.
        p.print(.loop(label: "compare with the original", done: 1, total: 2, units: 10, unit: "tok", elapsed: 0.05))
        XCTAssertEqual(written.count, 4)
        XCTAssertEqual(written.last, "\rcompare with the original  1/2   50%  200 tok/s  elapsed 0:00  ETA 0:00")
    }

    func testAShorterLineCoversTheLongerOneBeforeIt() {
        let p = printer()
        p.print(eval(10, tokens: 10000, at: 10))   // 1000 tok/s
        p.print(eval(11, tokens: 10989, at: 11))   // 999 tok/s
        XCTAssertEqual(written.count, 2)
        XCTAssertEqual(written[1], "\reval  11/40   27%  999 tok/s  elapsed 0:11  ETA 0:29 ")
        XCTAssertEqual(written[1].count, written[0].count)
    }

    func testClocksAreMinutesAndSecondsOrHoursMinutesAndSeconds() {
        XCTAssertEqual([0, 59.4, 59.6, 754, 3599, 3600, 3725, 360_000].map(ProgressPrinter.clock),
                       ["0:00", "0:59", "1:00", "12:34", "59:59", "1:00:00", "1:02:05", "100:00:00"])
        XCTAssertEqual([Double.nan, .infinity, 1e300].map(ProgressPrinter.clock), ["--:--", "--:--", "--:--"])
    }

    func analysis(_ phase: String, step: Int, steps: Int, fraction: Double, at elapsed: Double) -> ProgressEvent {
        .analysis(batch: 1, batches: 3, phase: phase, step: step, steps: steps, fraction: fraction, tokens: 384, elapsed: elapsed)
    }

    func testAnAnalysisLineRatesTheTokensAtThePaceOfTheWorkDone() {
        let p = printer(inPlace: false)
        p.print(analysis("removal scan", step: 2, steps: 5, fraction: 0.5, at: 10))
        // Half the FLOPs of 384 tokens in 10 s: 19.2 tokens a second; as long again to go.
        XCTAssertEqual(written, ["analyze  batch 2/3  removal scan 2/5   50%  19 tok/s  elapsed 0:10  ETA 0:10\n"])
    }

    func testAnAnalysisIntoALogPrintsEveryFiveSecondsAndItsEnd() {
        let p = printer(inPlace: false)
        p.print(analysis("full pass", step: 0, steps: 5, fraction: 0, at: 0))        // nothing done yet
        p.print(analysis("full pass", step: 1, steps: 5, fraction: 0.1, at: 1))
        p.print(analysis("full pass", step: 2, steps: 5, fraction: 0.2, at: 5.9))
        p.print(analysis("statistics", step: 1, steps: 1, fraction: 0.3, at: 6))
        p.print(analysis("early exit", step: 5, steps: 5, fraction: 1, at: 7))
        XCTAssertEqual(written.count, 3, written.joined())
        XCTAssertTrue(written[0].hasPrefix("analyze  batch 2/3  full pass 1/5   10%"), written[0])
        XCTAssertTrue(written[1].hasPrefix("analyze  batch 2/3  statistics   30%"), "a phase of one step has no count: \(written[1])")
        XCTAssertTrue(written[2].hasPrefix("analyze  batch 2/3  early exit 5/5  100%"), written[2])
        XCTAssertTrue(written.allSatisfy { $0.hasSuffix("\n") && !$0.hasPrefix("\r") }, "one line each")
    }

    func testAnAnalysisOnATerminalRewritesItsLineTwiceASecond() {
        let p = printer(inPlace: true)
        p.print(analysis("full pass", step: 1, steps: 5, fraction: 0.1, at: 1))
        p.print(analysis("full pass", step: 2, steps: 5, fraction: 0.2, at: 1.4))
        p.print(analysis("full pass", step: 3, steps: 5, fraction: 0.3, at: 1.5))
        p.print(analysis("early exit", step: 5, steps: 5, fraction: 1, at: 1.6))
        XCTAssertEqual(written.count, 3, written.joined())
        XCTAssertTrue(written.allSatisfy { $0.hasPrefix("\ranalyze  batch 2/3  ") }, written.joined())
        XCTAssertEqual(written.map { $0.hasSuffix("\n") }, [false, false, true], "a newline after the last only")
    }

    func testEveryTrainingStepIsALine() {
        let p = printer()
        let step = ProgressEvent.trainingStep(step: 20, steps: 100, loss: 2.34567, learningRate: 0.0002, gradientNorm: 0.8123,
                                              tokensPerSecond: 3100.4, secondsPerStep: 2, elapsed: 4000)
        p.print(step)
        p.print(step)
        // 80 steps to go at 2 s each.
        XCTAssertEqual(written, Array(repeating: "step 20/100  loss 2.3457  lr 0.0002  grad norm 0.812  3100 tok/s  elapsed 1:06:40  ETA 2:40\n",
                                      count: 2))
    }
}
