// Interrupted runs leave a finished output or none. cut, merge, analyze and eval are started as child
// processes and sent SIGINT or SIGTERM at random moments once their handler is installed: each ends with
// 0 or 128 + signal (130, 143), never killed by the signal, with no temporary left and the output either
// absent or complete and loadable (complete when the signal came after it was published). After a kill -9 only temporary names remain (never the output's own name half-written),
// and the next run removes them and writes a complete output.
import Checkpoint
import Foundation
import Support
import Tensor
import TestSupport
import XCTest

final class InterruptionTests: XCTestCase {
    var scratch: URL!
    var model: URL!
    var adapter: URL!
    var dataset: URL!
    var random = SeededGenerator(seed: UInt64(Date().timeIntervalSince1970 * 1000))

    override func setUpWithError() throws {
        (scratch, model) = try PruneExecutable.scratchWithModel("interrupt")
        adapter = scratch.appendingPathComponent("adapter")
        try PEFTAdapter(config: PEFTAdapterConfig(rank: 2, alpha: 4, targets: Projection.allCases, layers: Array(0..<5)),
                        weights: (0..<5).flatMap { l in
                            [(Projection.q, 64), (.k, 32), (.v, 32), (.o, 64), (.gate, 172), (.up, 172), (.down, 64)].map { p, out in
                                LoRAWeights(layer: l, projection: p, a: Tensor(shape: [2, p == .down ? 172 : 64], repeating: 0.01),
                                            b: Tensor(shape: [out, 2], repeating: 0.02))
                            }
                        }).write(to: adapter)
        // The first chapters of the KJV set: long enough that a run takes a while, short enough for a test.
        dataset = scratch.appendingPathComponent("kjv-head.jsonl")
        let lines = try String(contentsOf: Fixtures.kjvValid, encoding: .utf8).split(separator: "\n").prefix(6)
        try Data(lines.joined(separator: "\n").utf8).write(to: dataset)
    }

    override func tearDown() { if let scratch { try? FileManager.default.removeItem(at: scratch) } }

    /// Whether process `pid` catches `signal` yet (its SigCgt mask in /proc).
    func catches(_ pid: pid_t, _ signal: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
              let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16) else { return false }
        return mask & (1 << UInt64(signal - 1)) != 0
    }

    /// Starts `prune args`, waits until it handles signals (unless `signal` is SIGKILL), waits `delay`
    /// seconds more, sends `signal` and returns how the process ended.
    func interrupt(_ args: [String], with signal: Int32, after delay: Double) throws -> (status: Int32, signaled: Bool) {
        let p = Process()
        p.executableURL = PruneExecutable.url
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        if signal != SIGKILL {
            let start = Date()
            while p.isRunning && !catches(p.processIdentifier, signal) && Date().timeIntervalSince(start) < 10 { usleep(200) }
        }
        usleep(UInt32(delay * 1e6))
        if p.isRunning { kill(p.processIdentifier, signal) }
        p.waitUntilExit()
        return (p.terminationStatus, p.terminationReason == .uncaughtSignal)
    }

    /// Seconds an uninterrupted run of `args` takes (and that it succeeds).
    func duration(_ args: [String]) throws -> Double {
        let start = Date()
        let r = try ChildProcess.run(PruneExecutable.url.path, args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return Date().timeIntervalSince(start)
    }

    /// Names in `out`'s directory that are temporaries of `out`.
    func temporaries(of out: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: out.deletingLastPathComponent().path)) ?? [])
            .filter { AtomicFile.temporaryOwner($0, of: out) != nil }
    }

    /// A complete checkpoint: it passes CheckpointValidation and has every layer.
    func assertCompleteCheckpoint(_ out: URL, layers: Int, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let checkpoint = try CheckpointValidation.validate(out)
            XCTAssertEqual(checkpoint.config.numHiddenLayers, layers, context, file: file, line: line)
        } catch {
            XCTFail("\(context): incomplete output: \(error)", file: file, line: line)
        }
    }

    /// A complete analysis directory: the four files, analysis.json readable.
    func assertCompleteAnalysis(_ out: URL, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        for name in ["analysis.json", "analysis.h5", "analysis.svg", "analysis-layers.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), "\(context): \(name)", file: file, line: line)
        }
        let json = FileManager.default.contents(atPath: out.appendingPathComponent("analysis.json").path) ?? Data()
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: json), "\(context): analysis.json", file: file, line: line)
    }

    /// Runs `args` (writing `out`) `rounds` times with SIGINT/SIGTERM at random moments and checks each end.
    func checkSignals(_ name: String, _ args: [String], out: URL, rounds: Int, complete: (URL, String) -> Void) throws -> [Int32: Int] {
        let typical = try duration(args)
        try? FileManager.default.removeItem(at: out)
        var ends: [Int32: Int] = [:]
        for round in 0..<rounds {
            let signal = round % 2 == 0 ? SIGTERM : SIGINT
            let delay = Double(random.next() % 1000) / 1000 * typical * 1.2
            let (status, signaled) = try interrupt(args, with: signal, after: delay)
            let context = "\(name) round \(round): signal \(signal) after \(String(format: "%.3f", delay)) s → \(signaled ? "signal " : "")\(status)"
            XCTAssertFalse(signaled, context)
            XCTAssertTrue(status == 0 || status == 128 + signal, context)
            // Interrupted before the output was published: none; after (while reporting): the whole of it.
            if status == 0 || FileManager.default.fileExists(atPath: out.path) { complete(out, context) }
            XCTAssertEqual(temporaries(of: out), [], context)
            ends[status, default: 0] += 1
            try? FileManager.default.removeItem(at: out)
        }
        print("\(name): \(rounds) interrupted runs (typical \(String(format: "%.2f", typical)) s), exit statuses \(ends.sorted { $0.key < $1.key })")
        return ends
    }

    func testCutMergeAnalyzeAndEvalEndCleanlyOnSIGINTAndSIGTERM() throws {
        let out = scratch.appendingPathComponent("out")
        var interrupted = 0
        let cut = try checkSignals("cut", ["cut", model.path, "--layers", "1-2", "-o", out.path], out: out, rounds: 8) {
            assertCompleteCheckpoint($0, layers: 3, $1)
        }
        let merge = try checkSignals("merge", ["merge", model.path, "--adapter", adapter.path, "-o", out.path], out: out, rounds: 8) {
            assertCompleteCheckpoint($0, layers: 5, $1)
        }
        let analyze = try checkSignals("analyze", ["analyze", model.path, "--dataset", dataset.path, "--samples", "8", "--context", "128",
                                                   "--removal-scan", "-o", out.path], out: out, rounds: 6) { assertCompleteAnalysis($0, $1) }
        let eval = try checkSignals("eval", ["eval", model.path, "--dataset", dataset.path, "--context", "128"], out: out, rounds: 4) { _, _ in }
        for ends in [cut, merge, analyze, eval] { interrupted += ends.filter { $0.key != 0 }.map(\.value).reduce(0, +) }
        XCTAssertGreaterThan(interrupted, 0, "some run was interrupted (not every one finished first)")
    }

    /// Ctrl-C while bench writes a random checkpoint (the Llama-3.2-1B shape, 2.5 GB streamed tensor by tensor)
    /// leaves nothing in the cache: the directory's temporary is registered like every other output's.
    func testABenchCheckpointInterruptedWhileWrittenLeavesNothing() throws {
        let cache = scratch.appendingPathComponent("bench-cache")
        let out = cache.appendingPathComponent("llama3.2-1b-shape")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        for round in 0..<3 {
            let signal = round % 2 == 0 ? SIGINT : SIGTERM
            let p = Process()
            p.executableURL = PruneExecutable.url
            p.arguments = ["bench", "--shapes", "llama3.2-1b", "--modes", "forward", "--no-pytorch", "--cache", cache.path,
                           "--repetitions", "1", "--batch", "1", "--length", "8"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let start = Date()
            while p.isRunning && temporaries(of: out).isEmpty && Date().timeIntervalSince(start) < 60 { usleep(2_000) }
            let writing = !temporaries(of: out).isEmpty
            usleep(UInt32(Double(random.next() % 1000) * 1000))   // 0–1 s into the write
            if p.isRunning { kill(p.processIdentifier, signal) }
            p.waitUntilExit()
            let context = "round \(round): signal \(signal) while writing (\(writing)) → \(p.terminationStatus)"
            XCTAssertTrue(writing, context)
            XCTAssertEqual(p.terminationReason, .exit, context)
            XCTAssertEqual(p.terminationStatus, 128 + signal, context)
            XCTAssertEqual(temporaries(of: out), [], context)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), context)
        }
    }

    func testAnInterruptedAnalysisLeavesAnEarlierOneWhole() throws {
        let out = scratch.appendingPathComponent("analysis")
        let args = ["analyze", model.path, "--dataset", dataset.path, "--samples", "8", "--context", "128", "-o", out.path, "--force"]
        XCTAssertGreaterThan(try duration(args), 0)
        let before = try Data(contentsOf: out.appendingPathComponent("analysis.json"))
        for round in 0..<4 {
            let (status, signaled) = try interrupt(args, with: SIGTERM, after: Double(round) * 0.05)
            XCTAssertFalse(signaled)
            XCTAssertTrue(status == 0 || status == 143, "\(status)")
            assertCompleteAnalysis(out, "round \(round)")
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("analysis.json")), before, "the same analysis again, or the earlier one")
            XCTAssertEqual(((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).filter { $0.hasPrefix(".") }, [])
        }
    }

    func testAfterKill9OnlyTemporariesRemainAndTheNextRunCleansThem() throws {
        let out = scratch.appendingPathComponent("out")
        let args = ["cut", model.path, "--layers", "3", "-o", out.path]
        let typical = try duration(args)
        try FileManager.default.removeItem(at: out)
        var leftovers = 0
        for round in 0..<8 {
            // The writing happens in the second half of a run (after loading and checking).
            let delay = (0.5 + Double(random.next() % 1000) / 2000) * typical
            let (status, signaled) = try interrupt(args, with: SIGKILL, after: delay)
            let context = "round \(round): kill -9 after \(String(format: "%.3f", delay)) s → \(signaled ? "signal " : "")\(status)"
            // The output's own name is complete or absent; anything else carries a temporary name.
            if FileManager.default.fileExists(atPath: out.path) { assertCompleteCheckpoint(out, layers: 4, context) }
            let names = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
            for name in names where !["model", "adapter", "out", dataset.lastPathComponent].contains(name) {
                XCTAssertNotNil(AtomicFile.temporaryOwner(name, of: out), "\(context): \(name) is neither the output nor a temporary")
            }
            leftovers += temporaries(of: out).count
            let rerun = try ChildProcess.run(PruneExecutable.url.path, args + ["--force"])
            XCTAssertEqual(rerun.status, 0, "\(context): \(rerun.stderr)")
            assertCompleteCheckpoint(out, layers: 4, context)
            XCTAssertEqual(temporaries(of: out), [], "\(context): the next run removed the leftovers")
            try FileManager.default.removeItem(at: out)
        }
        print("kill -9: 8 runs, \(leftovers) temporaries left behind and removed by the next run")
    }

    func testADeferredSignalIsRecordedForTheJobToStopAtASafePoint() throws {
        // In this process: a signal during `deferring` only sets pendingSignal; the temporary stays.
        Interruption.install()
        let temporary = scratch.appendingPathComponent(".state.tmp-\(getpid())-ABCDEF12")
        try Data("step 3".utf8).write(to: temporary)
        let token = Interruption.register(temporary)
        defer { Interruption.release(token) }
        let (steps, signal) = Interruption.deferring { () -> Int in
            var step = 0
            while Interruption.pendingSignal == nil && step < 5000 {
                if step == 10 { raise(SIGTERM) }
                step += 1
                usleep(1000)
            }
            return step
        }
        XCTAssertEqual(signal, SIGTERM)
        XCTAssertLessThan(steps, 5000, "the loop saw the signal and stopped")
        XCTAssertTrue(FileManager.default.fileExists(atPath: temporary.path), "nothing removed while deferred")
        XCTAssertEqual(Interruption.registeredPaths, [temporary])
    }

    func testStaleTemporariesOfDeadProcessesAreRemovedAndLiveOnesKept() throws {
        let out = scratch.appendingPathComponent("out")
        // A pid that is not running (a child that has exited) and one that is (this process).
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        let stale = scratch.appendingPathComponent(".out.tmp-\(dead.processIdentifier)-ABCDEF12")
        let live = scratch.appendingPathComponent(".out.tmp-\(getppid())-ABCDEF12")
        for url in [stale, live] { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
        let unrelated = scratch.appendingPathComponent(".other.tmp-\(dead.processIdentifier)-ABCDEF12")
        try Data().write(to: unrelated)
        XCTAssertEqual(AtomicFile.removeStaleTemporaries(of: out), [stale.lastPathComponent])
        XCTAssertTrue(FileManager.default.fileExists(atPath: live.path), "a running process's temporary is kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: unrelated.path), "another output's temporary is kept")
        XCTAssertNil(AtomicFile.temporaryOwner("out", of: out))
        XCTAssertNil(AtomicFile.temporaryOwner(".out.tmp-x-ABCDEF12", of: out))
    }
}
