import ArgumentParser
import Foundation
import Llama
import ModelIO
import Pipeline
import Tensor

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Forward tokens/s and peak memory on the default checkpoint and realistic random shapes, beside PyTorch's.",
        discussion: """
        Each shape runs in its own child process so that its peak memory is its own. Random checkpoints of the
        SmolLM2-135M and stories110M shapes are written once to --cache (float32 safetensors) and loaded by both
        engines. PyTorch figures appear when a Python with torch and transformers is found ($PRUNE_PYTHON,
        ~/.cache/prune-dev/venv, python3).
        """)

    @Option(name: .long, help: "Checkpoint directories to measure besides the built-in shapes (repeatable).")
    var model: [String] = []

    @Option(name: .long, help: "Built-in shapes to run: stories260k, smollm2, stories110m (comma-separated), or none.")
    var shapes = "stories260k,smollm2,stories110m"

    @Option(name: .long, help: "Sequences per forward pass.")
    var batch = 4

    @Option(name: .long, help: "Tokens per sequence.")
    var length = 256

    @Option(name: .long, help: "Timed repetitions after one warm-up.")
    var repetitions = 3

    @Option(name: .long, help: "Threads for both engines.")
    var threads = 2

    @Option(name: .long, help: "Folder for the random-initialised benchmark checkpoints.")
    var cache = NSHomeDirectory() + "/.cache/prune/bench"

    @Option(name: .long, help: "Python with torch + transformers for the baseline (default: search).")
    var python: String?

    @Flag(name: .long, help: "Skip the PyTorch baseline.")
    var noPytorch = false

    @Flag(name: .long, help: "Print the results as JSON lines.")
    var json = false

    @Option(name: .long, help: .hidden)
    var child: String?

    func run() throws {
        if let child { return try runChild(URL(fileURLWithPath: child)) }
        var targets: [BenchmarkShape] = []
        for s in shapes.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            switch s {
            case "stories260k": targets.append(.checkpoint(Self.defaultCheckpoint()))
            case "smollm2": targets.append(.smolLM2)
            case "stories110m": targets.append(.stories110M)
            case "none", "": break
            default: throw PruneError("--shapes", "unknown shape \"\(s)\" (stories260k, smollm2, stories110m, none)")
            }
        }
        targets += model.map { .checkpoint(URL(fileURLWithPath: $0)) }
        let py = noPytorch ? nil : PyTorchBaseline.findPython(explicit: python)
        if !noPytorch && py == nil { FileHandle.standardError.write(Data("note: no Python with torch + transformers found; PyTorch figures skipped\n".utf8)) }
        if !json {
            print("forward, B=\(batch) T=\(length), \(threads) threads")
            print("model".padding(toLength: 22, withPad: " ", startingAt: 0) + "   prune tok/s   peak MB   torch tok/s   peak MB   ratio")
        }
        for shape in targets {
            let dir = try shape.materialize(cache: URL(fileURLWithPath: cache))
            let ours = try measureInChild(dir, name: shape.name)
            var theirs: BenchmarkResult?
            if let py {
                do {
                    let r = try PyTorchBaseline.measure(python: py, mode: "forward", checkpoint: dir, threads: threads, batch: batch,
                                                        length: length, repetitions: repetitions)
                    theirs = BenchmarkResult(name: shape.name, engine: "pytorch", tokensPerSecond: r.tokensPerSecond,
                                             peakMemoryBytes: r.peakMemoryBytes, threads: threads)
                } catch {
                    FileHandle.standardError.write(Data("note: \(error)\n".utf8))
                }
            }
            if json {
                for r in [ours, theirs].compactMap({ $0 }) {
                    print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
                }
            } else {
                var line = shape.name.padding(toLength: 22, withPad: " ", startingAt: 0)
                line += String(format: " %13.0f %9.0f", ours.tokensPerSecond, Double(ours.peakMemoryBytes) / 1e6)
                if let theirs {
                    line += String(format: " %13.0f %9.0f %6.2fx", theirs.tokensPerSecond, Double(theirs.peakMemoryBytes) / 1e6,
                                   ours.tokensPerSecond / theirs.tokensPerSecond)
                }
                print(line)
            }
        }
    }

    /// Re-runs this executable on one checkpoint so that VmHWM is that model's alone.
    func measureInChild(_ dir: URL, name: String) throws -> BenchmarkResult {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let exePath = exe.contains("/") ? exe : (Bundle.main.executablePath ?? exe)
        let r = try PyTorchBaseline.run(exePath, ["bench", "--child", dir.path, "--batch", "\(batch)", "--length", "\(length)",
                                                  "--repetitions", "\(repetitions)", "--threads", "\(threads)"])
        guard r.status == 0, let line = r.stdout.split(separator: "\n").last,
              var result = try? JSONDecoder().decode(BenchmarkResult.self, from: Data(line.utf8)) else {
            throw PruneError(dir.path, "benchmark child failed: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        result.name = name
        return result
    }

    func runChild(_ dir: URL) throws {
        Gemm.setThreads(threads)
        let model = try LlamaModel.load(directory: dir)
        let tps = ForwardBenchmark.tokensPerSecond(model: model, batch: batch, length: min(length, model.config.maxPositionEmbeddings),
                                                   repetitions: repetitions)
        let r = BenchmarkResult(name: dir.lastPathComponent, engine: "prune", tokensPerSecond: tps,
                                peakMemoryBytes: ProcessMemory.peakResidentBytes, threads: threads)
        print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
    }

    /// Checkpoints/stories260K beside the executable's package, or ../shared's copy.
    static func defaultCheckpoint() -> URL {
        DefaultCheckpoint.url
    }
}
