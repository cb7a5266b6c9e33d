// Data parallelism as a user runs it: `mpirun -np 2 finetune … --batch-size 2` gives the loss curve and the
// adapter of one process with --batch-size 4; `mpirun -np 2 prune analyze` writes the same analysis.json, byte
// for byte; a rank killed with SIGKILL ends the job within seconds and `--resume` under mpirun finishes the run
// as if nothing had happened; and the same two ranks in two network namespaces joined by a veth pair (TCP
// only, as on two machines). Every test skips, saying why, where mpirun is missing.
import Checkpoint
import Foundation
import Support
import TestSupport
import XCTest

final class MPICommandTests: XCTestCase {
    var scratch: URL!
    override func setUpWithError() throws { scratch = try Fixtures.temporaryDirectory("mpi-cli") }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    // MARK: the runs

    /// mpirun, or a skip saying it is missing.
    func mpirun() throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw Fixtures.skip("mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev); the MPI tests need it")
    }

    /// `mpirun -np N` arguments (root needs --allow-run-as-root; --oversubscribe lets 2 ranks run on 1 core).
    func mpiArgs(_ np: Int, _ extra: [String] = []) -> [String] {
        (getuid() == 0 ? ["--allow-run-as-root"] : []) + ["--oversubscribe", "-np", "\(np)"] + extra
    }

    func finetuneArgs(batch: Int, steps: Int = 6, _ out: URL, _ extra: [String] = []) -> [String] {
        [Fixtures.stories260K.path, "--lora", "--dataset", Fixtures.kjvValid.path, "--context", "32", "--batch-size", "\(batch)",
         "--grad-accum", "2", "--steps", "\(steps)", "--lr", "1e-4", "--dropout", "0.1", "--eval-tokens", "300", "--eval-every", "3", "--threads", "1",
         "-o", out.path] + extra
    }

    func analyzeArgs(_ out: URL) -> [String] {
        ["analyze", Fixtures.stories260K.path, "--dataset", Fixtures.kjvValid.path, "--samples", "10", "--context", "48",
         "--batch-size", "2", "--removal-scan", "--early-exit", "--threads", "1", "-o", out.path]
    }

    func run(_ executable: String, _ args: [String]) throws -> ChildProcessResult {
        try ChildProcess.run(executable, args)
    }

    // MARK: comparisons

    /// The (step, key) → value of every number in metrics.jsonl, for the keys that must not depend on the ranks.
    func curve(_ out: URL) throws -> [String: Double] {
        var values: [String: Double] = [:]
        for r in try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n") {
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.utf8)) as? [String: Any])
            let step = try XCTUnwrap(obj["step"] as? Int)
            for key in ["loss", "grad_norm", "eval_loss", "lr", "tokens", "counted_targets", "ce", "kl"] {
                if let v = obj[key] as? Double { values["\(step).\(key)"] = v }
            }
        }
        return values
    }

    /// Loss curves (training and held-out) agree within 1e-5 relative, the exported adapters within their pinned bound. (The runs use lr 1e-4: AdamW's
    /// update lr·m̂/(√v̂ + eps) turns a rounding-level difference in a gradient element near eps = 1e-8 into a
    /// difference up to a fraction of lr, which at lr 1e-3 reaches 5e-5 in a handful of the 46k adapter values.)
    func assertSameRun(_ a: URL, _ b: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let ca = try curve(a), cb = try curve(b)
        XCTAssertEqual(Set(ca.keys), Set(cb.keys), file: file, line: line)
        XCTAssertTrue(ca.keys.contains { $0.hasSuffix(".eval_loss") }, file: file, line: line)
        for (k, v) in ca { XCTAssertEqual(v, cb[k] ?? .nan, accuracy: 1e-5 * max(1, abs(v)), k, file: file, line: line) }
        let fa = try SafetensorsFile(url: a.appendingPathComponent("adapter/adapter_model.safetensors"))
        let fb = try SafetensorsFile(url: b.appendingPathComponent("adapter/adapter_model.safetensors"))
        XCTAssertEqual(fa.entries.count, fb.entries.count, file: file, line: line)
        var worst: Float = 0
        for entry in fa.entries {
            let x = try fa.tensor(entry.name), y = try fb.tensor(entry.name)
            for i in 0..<x.count { worst = max(worst, abs(x[i] - y[i])) }
        }
        assertPinned("dataParallelAdapter", Double(worst), within: Tolerance.dataParallelAdapter, "largest adapter difference",
                     file: file, line: line)
        print("note: \(b.lastPathComponent) vs \(a.lastPathComponent): largest adapter difference \(worst), largest loss-curve difference "
              + "\(ca.map { abs($0.value - (cb[$0.key] ?? .nan)) }.max() ?? 0)")
    }

    // MARK: tests

    func testTwoRanksOfBatchTwoEqualOneProcessOfBatchFour() throws {
        let mpirun = try mpirun()
        let one = scratch.appendingPathComponent("one"), two = scratch.appendingPathComponent("two")
        let r1 = try PruneExecutable.runFinetune(finetuneArgs(batch: 4, one))
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let r2 = try run(mpirun, mpiArgs(2, [PruneExecutable.finetune.path]) + finetuneArgs(batch: 2, two))
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertTrue(r2.stderr.contains("data parallel: 2 ranks"), r2.stderr)
        XCTAssertEqual(r2.stdout.split(separator: "\n").filter { $0.hasPrefix("done:") }.count, 1, "rank 0 alone reports: \(r2.stdout)")
        try assertSameRun(one, two)
    }

    /// Distillation under mpirun: each rank runs the teacher on its own windows, and the curve (its CE and KL parts
    /// too) and the adapter are one process's. The student is the cut stories260K, the teacher the whole one.
    func testTwoRanksDistilLikeOneProcess() throws {
        let mpirun = try mpirun()
        let cut = scratch.appendingPathComponent("cut"), one = scratch.appendingPathComponent("one"), two = scratch.appendingPathComponent("two")
        XCTAssertEqual(try PruneExecutable.run(["cut", Fixtures.stories260K.path, "--layers", "2-3", "-o", cut.path]).status, 0)
        func distilled(batch: Int, _ out: URL) -> [String] {
            [cut.path] + finetuneArgs(batch: batch, out, ["--teacher", Fixtures.stories260K.path, "--distill-weight", "0.7"]).dropFirst()
        }
        let r1 = try PruneExecutable.runFinetune(distilled(batch: 4, one))
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let r2 = try run(mpirun, mpiArgs(2, [PruneExecutable.finetune.path]) + distilled(batch: 2, two))
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertTrue(try curve(two).keys.contains("1.kl"), "the parts are logged under mpirun")
        try assertSameRun(one, two)
    }

    func testAnalyzeOnTwoRanksWritesTheSameAnalysisAsOneProcess() throws {
        let mpirun = try mpirun()
        let one = scratch.appendingPathComponent("a1"), two = scratch.appendingPathComponent("a2")
        let r1 = try PruneExecutable.run(analyzeArgs(one))
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let r2 = try run(mpirun, mpiArgs(2, [PruneExecutable.url.path]) + analyzeArgs(two))
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertEqual(r2.stdout.components(separatedBy: "wrote ").count, 2, "rank 0 alone prints: \(r2.stdout)")
        let a = try Data(contentsOf: one.appendingPathComponent("analysis.json")), b = try Data(contentsOf: two.appendingPathComponent("analysis.json"))
        XCTAssertEqual(a, b, "analysis.json differs between 1 process and 2 ranks")
    }

    func testAKilledRankEndsTheJobAndTheRunResumesUnderMPI() throws {
        let mpirun = try mpirun()
        let out = scratch.appendingPathComponent("killed"), reference = scratch.appendingPathComponent("reference")
        let steps = 80
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = mpiArgs(2, [PruneExecutable.finetune.path]) + finetuneArgs(batch: 2, steps: steps, out, ["--save-every", "2", "--keep-best"])
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait for a checkpoint, then kill rank 1 (a child of mpirun) with SIGKILL.
        let checkpoints = out.appendingPathComponent("checkpoints/step-2/state.json")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoints.path) && p.isRunning && Date() < deadline { usleep(20_000) }
        let ranks = Self.children(of: p.processIdentifier, named: "finetune")
        XCTAssertEqual(ranks.count, 2, "mpirun's ranks")
        guard p.isRunning, let victim = ranks.last else { p.terminate(); p.waitUntilExit(); return XCTFail("the run ended before a rank could be killed") }
        kill(victim, SIGKILL)
        let killed = Date()
        while p.isRunning && Date().timeIntervalSince(killed) < 60 { usleep(20_000) }
        let took = Date().timeIntervalSince(killed)
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        XCTAssertLessThan(took, 30, "the job must end within bounded time after a rank dies")
        XCTAssertNotEqual(p.terminationStatus, 0, "a job that lost a rank fails")
        print("note: mpirun ended \(String(format: "%.2f", took)) s after rank 1 was killed")

        let resumed = try run(mpirun, mpiArgs(2, [PruneExecutable.finetune.path, "--resume", out.path]))
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resumed from"), resumed.stderr)
        let r1 = try PruneExecutable.runFinetune(finetuneArgs(batch: 4, steps: steps, reference, ["--keep-best"]))
        XCTAssertEqual(r1.status, 0, r1.stderr)
        try assertSameRun(reference, out)

        // A resume under another number of ranks is refused (the global batch would change).
        let other = try PruneExecutable.runFinetune(["--resume", out.path, "--steps", "\(steps + 2)"])
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("ranks"), other.stderr)
    }

    func testUSR1ToMpirunStopsEveryRankAtTheSameStepWithACheckpoint() throws {
        let mpirun = try mpirun()
        let out = scratch.appendingPathComponent("usr1")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = mpiArgs(2, [PruneExecutable.finetune.path]) + finetuneArgs(batch: 2, steps: 2000, out, ["--save-every", "2"])
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let checkpoint = out.appendingPathComponent("checkpoints/step-2/state.json")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoint.path) && p.isRunning && Date() < deadline { usleep(20_000) }
        kill(p.processIdentifier, SIGUSR1)   // mpirun forwards it to both ranks
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130, "an interrupted run exits 130")
        let metrics = try String(contentsOf: out.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let last = try XCTUnwrap(metrics.split(separator: "\n").last { $0.contains("\"loss\"") })
        let step = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])?["step"] as? Int)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoints/step-\(step)/state.json").path),
                      "the step the ranks stopped at is saved")
        XCTAssertLessThan(step, 2000)
    }

    func testAHungRankEndsTheJobAfterTheCollectiveTimeout() throws {
        let mpirun = try mpirun()
        let out = scratch.appendingPathComponent("hung")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = mpiArgs(2, [PruneExecutable.finetune.path]) + finetuneArgs(batch: 2, steps: 2000, out, ["--save-every", "2"])
        p.environment = ProcessInfo.processInfo.environment.merging(["PRUNE_MPI_TIMEOUT": "3"]) { $1 }
        let log = scratch.appendingPathComponent("hung.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: log)
        try p.run()
        let checkpoint = out.appendingPathComponent("checkpoints/step-2/state.json")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoint.path) && p.isRunning && Date() < deadline { usleep(20_000) }
        guard p.isRunning, let victim = Self.children(of: p.processIdentifier, named: "finetune").last else {
            p.terminate(); p.waitUntilExit(); return XCTFail("the run ended before a rank could be stopped")
        }
        kill(victim, SIGSTOP)   // alive but silent: MPI alone would wait for it forever
        defer { kill(victim, SIGKILL) }
        let stopped = Date()
        while p.isRunning && Date().timeIntervalSince(stopped) < 60 { usleep(20_000) }
        let took = Date().timeIntervalSince(stopped)
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        XCTAssertLessThan(took, 30, "PRUNE_MPI_TIMEOUT=3 must end the job within seconds")
        XCTAssertNotEqual(p.terminationStatus, 0)
        let said = try String(contentsOf: log, encoding: .utf8)
        XCTAssertTrue(said.contains("PRUNE_MPI_TIMEOUT"), "the waiting rank says why it ends: \(said)")
        print("note: mpirun ended \(String(format: "%.2f", took)) s after rank 1 was stopped (timeout 3 s)")
    }

    func testTwoRanksInTwoNetworkNamespacesOverTCPEqualOneProcess() throws {
        let mpirun = try mpirun()
        let net = try NamespacePair(tag: "\(getpid() % 100_000)")
        defer { net.remove() }
        // mpirun runs in namespace A; its "ssh" to B's address runs the command in namespace B instead.
        let agent = scratch.appendingPathComponent("agent.sh"), hosts = scratch.appendingPathComponent("hosts")
        try """
        #!/bin/sh
        # plm_rsh_agent for the test: "ssh HOST COMMAND…" runs COMMAND… in HOST's network namespace.
        host=$1; shift
        if [ "$host" = "\(net.addressB)" ]; then exec ip netns exec \(net.nameB) sh -c "$*"; fi
        exec sh -c "$*"
        """.write(to: agent, atomically: true, encoding: .utf8)
        chmod(agent.path, 0o755)
        try "\(net.addressA) slots=1\n\(net.addressB) slots=1\n".write(to: hosts, atomically: true, encoding: .utf8)
        func acrossNamespaces(_ command: [String]) throws -> ChildProcessResult {
            try run("/usr/sbin/ip", ["netns", "exec", net.nameA, mpirun] + mpiArgs(2, [
                "--hostfile", hosts.path, "--map-by", "node", "--mca", "plm_rsh_agent", agent.path,
                "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", net.subnet, "--mca", "oob_tcp_if_include", net.subnet]) + command)
        }
        // Each rank is where it should be: rank 0 sees only A's address, rank 1 only B's.
        let whereami = try acrossNamespaces(["sh", "-c", "echo rank $OMPI_COMM_WORLD_RANK $(ip -4 -o addr show | awk '{print $4}' | grep -v 127.0.0.1)"])
        XCTAssertEqual(whereami.status, 0, whereami.stderr)
        XCTAssertTrue(whereami.stdout.contains("rank 0 \(net.addressA)/24"), whereami.stdout)
        XCTAssertTrue(whereami.stdout.contains("rank 1 \(net.addressB)/24"), whereami.stdout)

        let one = scratch.appendingPathComponent("one"), two = scratch.appendingPathComponent("two")
        let r1 = try PruneExecutable.runFinetune(finetuneArgs(batch: 4, one))
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let r2 = try acrossNamespaces([PruneExecutable.finetune.path] + finetuneArgs(batch: 2, two))
        XCTAssertEqual(r2.status, 0, r2.stderr)
        try assertSameRun(one, two)

        let a1 = scratch.appendingPathComponent("a1"), a2 = scratch.appendingPathComponent("a2")
        XCTAssertEqual(try PruneExecutable.run(analyzeArgs(a1)).status, 0)
        let r3 = try acrossNamespaces([PruneExecutable.url.path] + analyzeArgs(a2))
        XCTAssertEqual(r3.status, 0, r3.stderr)
        XCTAssertEqual(try Data(contentsOf: a1.appendingPathComponent("analysis.json")), try Data(contentsOf: a2.appendingPathComponent("analysis.json")))
    }

    // MARK: helpers


    /// Pids of `parent`'s children whose command name is `name` (from /proc), in pid order.
    static func children(of parent: Int32, named name: String) -> [Int32] {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
        return pids.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return false }
            let comm = stat[stat.index(after: open)..<close]
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return comm == name && fields.count > 1 && Int32(fields[1]) == parent
        }.sorted()
    }
}

/// Two network namespaces joined by a veth pair, each end with an address of a private /24 (loopback up in
/// both); nothing else is reachable from them. Throws a printed skip where namespaces cannot be made.
struct NamespacePair {
    let nameA: String, nameB: String, veth: String
    let subnet: String, addressA: String, addressB: String

    init(tag: String) throws {
        guard getuid() == 0 else { throw Fixtures.skip("network namespaces need root (ip netns add)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else { throw Fixtures.skip("iproute2 (/usr/sbin/ip) is not installed") }
        nameA = "prune-mpi-a\(tag)"; nameB = "prune-mpi-b\(tag)"; veth = "pmv\(tag)"
        let octet = 100 + Int(tag)! % 150
        subnet = "10.231.\(octet).0/24"; addressA = "10.231.\(octet).1"; addressB = "10.231.\(octet).2"
        let steps: [[String]] = [
            ["netns", "add", nameA], ["netns", "add", nameB],
            ["link", "add", veth + "a", "type", "veth", "peer", "name", veth + "b"],
            ["link", "set", veth + "a", "netns", nameA], ["link", "set", veth + "b", "netns", nameB],
            ["-n", nameA, "addr", "add", addressA + "/24", "dev", veth + "a"], ["-n", nameB, "addr", "add", addressB + "/24", "dev", veth + "b"],
            ["-n", nameA, "link", "set", "lo", "up"], ["-n", nameB, "link", "set", "lo", "up"],
            ["-n", nameA, "link", "set", veth + "a", "up"], ["-n", nameB, "link", "set", veth + "b", "up"],
        ]
        for s in steps {
            let r = try ChildProcess.run("/usr/sbin/ip", s)
            if r.status != 0 {
                remove()
                throw Fixtures.skip("cannot build the namespace pair here: ip \(s.joined(separator: " ")): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
    }

    /// Deletes both namespaces (the veth pair goes with them).
    func remove() {
        for n in [nameA, nameB] { _ = try? ChildProcess.run("/usr/sbin/ip", ["netns", "del", n]) }
    }
}

