import ArgumentParser
import Bench
import CLISupport
import Checkpoint
import Foundation
import Jobs
import Llama
import Recipes
import Support
import Tensor
import Training

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Forward and LoRA training tokens/s and peak memory (or, with --decode, batch-1 decoding) on the default checkpoint and realistic random shapes, beside PyTorch's.",
        discussion: """
        Each shape runs in its own child process so that its peak memory is its own. Random checkpoints of the SmolLM2-135M and stories110M shapes are written once to --cache (float32 safetensors) and loaded by both engines.

        Modes: forward (inference), train (forward + backward, LoRA r=8 on all seven projections) and train-checkpointed (the same with per-block recomputation).

        PyTorch figures appear when a Python with torch and transformers is found ($PRUNE_PYTHON, ~/.cache/prune-dev/venv, python3).
        """)

    @Option(name: .long, help: "Checkpoint directories to measure besides the built-in shapes (repeatable).")
    var model: [String] = []

    @Option(name: .long, help: "Built-in shapes to run: stories260k, smollm2, stories110m, llama3.2-1b, llama3.1-8b (comma-separated), or none. The Llama 3 shapes are written in bf16 shards (2.5 GB and 16 GB).")
    var shapes = "stories260k,smollm2,stories110m"

    @Option(name: .long, help: "What to time: forward, train, train-checkpointed (comma-separated).")
    var modes = "forward,train"

    @Option(name: .long, help: "Sequences per forward pass.")
    var batch = 4

    @Option(name: .long, help: "Tokens per sequence.")
    var length = 256

    @Option(name: .long, help: "How bf16/f16 matrices are held: stored (mapped, widened inside the matrix multiplies) or f32 (converted on load).")
    var weightsDtype: WeightsDType = .stored

    @OptionGroup var precision: ComputeOption

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

    @Flag(name: .long, help: "Show where the time of a step goes instead: per part (each projection's GEMMs forward and backward, LoRA, attention, norms/activations/RoPE/residual, lm_head + loss, embedding, optimizer) ms per step, share, GFLOP/s, CPU use; beside the measured sgemm rate and the estimated FMA peak. Runs in this process, --modes and --shapes as usual.")
    var breakdown = false

    @Flag(name: .long, help: "Compare healing instead: our finetune and PEFT train the same LoRA (r=8, alpha 16, all seven projections, cosine with warmup, clipping 1) on the same windows; needs --heal-model, --heal-dataset, --heal-valid.")
    var heal = false

    @Option(name: .long, help: "Checkpoint to heal (e.g. a cut) with --heal.")
    var healModel: String?

    @Option(name: .long, help: "Training data for --heal.")
    var healDataset: String?

    @Option(name: .long, help: "Held-out data for --heal.")
    var healValid: String?

    @Option(name: .long, help: "Optimizer steps for --heal.")
    var healSteps = 123

    @Flag(name: .long, help: "Time batch-1 decoding instead: prefill and decode tokens/s of --prompt-tokens then --new-tokens greedy tokens, a verification pass of 2/4/5/8 rows in one-token steps, bytes read per token against the read bandwidth measured in the same run over a buffer of that size; beside transformers' generate and, with --llama-cpp, llama-bench.")
    var decode = false

    @Option(name: .long, help: "With --decode: prompt tokens.")
    var promptTokens = 128

    @Option(name: .long, help: "With --decode: new tokens.")
    var newTokens = 128

    @Option(name: .long, help: "With --decode: a llama.cpp folder with build/bin/llama-bench and convert_hf_to_gguf.py (shared/scripts/get-llamacpp.sh builds one); each checkpoint is converted at the same dtype into --cache.")
    var llamaCpp: String?

    @Flag(name: .long, help: "Time self-speculative greedy decoding instead, on --model (one checkpoint): our plain greedy and --speculate exit:auto beside transformers' greedy generate and generate(assistant_early_exit=E), on the first --prompts records of --prompts-from cut to --prompt-tokens, --new-tokens each; every speculative output checked against its engine's plain one.")
    var speculate = false

    @Option(name: .long, help: "With --speculate: the prompts' dataset (.txt or JSONL).")
    var promptsFrom: String?

    @Option(name: .long, help: "With --speculate: how many prompts.")
    var prompts = 8

    @Option(name: .long, help: "With --speculate: exit:auto calibrates on this dataset (default: the model's speculation.json, else the prompt).")
    var calibration: String?

    @Option(name: .long, help: "With --speculate: the assistant_early_exit values transformers runs, e.g. 4,8,12 (default: the exits exit:auto chose).")
    var exits: String?

    @Option(name: .long, help: .hidden)
    var child: String?

    @Option(name: .long, help: .hidden)
    var childMode = "forward"

    func validate() throws {
        try asUsageError { try Parallelism.check(threads: threads) }
        guard promptTokens >= 1 && newTokens >= 2 else { throw ValidationError("--prompt-tokens must be at least 1 and --new-tokens at least 2") }
        if llamaCpp != nil && !decode { throw ValidationError("--llama-cpp goes with --decode") }
        if speculate {
            guard model.count == 1 else { throw ValidationError("--speculate measures one checkpoint: give --model DIR once") }
            guard promptsFrom != nil else { throw ValidationError("--speculate needs --prompts-from DATA") }
            guard prompts >= 1 else { throw ValidationError("--prompts must be at least 1") }
        }
        for (given, flag) in [(promptsFrom != nil, "--prompts-from"), (calibration != nil, "--calibration"), (exits != nil, "--exits")]
            where given && !speculate {
            throw ValidationError("\(flag) goes with --speculate")
        }
    }

    func run() throws {
        if let child { return try runChild(URL(fileURLWithPath: child)) }
        if heal { return try runHealing() }
        if speculate { return try runSpeculation() }
        let modeList = modes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for m in modeList where !["forward", "train", "train-checkpointed"].contains(m) {
            throw PruneError("--modes", "unknown mode \"\(m)\" (forward, train, train-checkpointed)")
        }
        let compute = precision.compute ?? .f32
        try compute.checkAvailable()
        var targets: [BenchmarkShape] = []
        for s in shapes.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            switch s {
            case "stories260k": targets.append(.checkpoint(Self.defaultCheckpoint()))
            case "smollm2": targets.append(.smolLM2)
            case "stories110m": targets.append(.stories110M)
            case "llama3.2-1b": targets.append(.llama32_1B)
            case "llama3.1-8b": targets.append(.llama31_8B)
            case "none", "": break
            default: throw PruneError("--shapes", "unknown shape \"\(s)\" (stories260k, smollm2, stories110m, llama3.2-1b, llama3.1-8b, none)")
            }
        }
        targets += model.map { .checkpoint(URL(fileURLWithPath: $0)) }
        if breakdown { return try runBreakdown(targets, modes: modeList) }
        if decode { return try runDecode(targets) }
        let py = noPytorch ? nil : PyTorchBaseline.findPython(explicit: python)
        if !noPytorch && py == nil { FileHandle.standardError.write(Data("note: no Python with torch + transformers found; PyTorch figures skipped\n".utf8)) }
        if !json {
            SystemReport.lines(threads: threads).forEach { print($0) }
            print("B=\(batch) T=\(length), \(threads) threads; train = LoRA r=8 on q,k,v,o,gate,up,down (PyTorch: PEFT)")
            if compute == .bf16, let dnnl = try? DNNLRuntime.load() {
                print("bf16 rows: our --compute bf16 (\(dnnl.summary)) beside PyTorch under torch.autocast(\"cpu\", dtype=torch.bfloat16); "
                      + "the last column of a bf16 row is ours bf16 ÷ ours f32")
            }
            print("model".padding(toLength: 22, withPad: " ", startingAt: 0) + "mode".padding(toLength: 20, withPad: " ", startingAt: 0)
                  + "   prune tok/s   peak MB  estim MB    load s   torch tok/s   peak MB    load s   ratio")
        }
        // With --compute bf16 each mode runs twice, f32 then bf16, so that one run holds both and PyTorch's both.
        let precisions: [ComputePrecision] = compute == .bf16 ? [.f32, .bf16] : [.f32]
        for shape in targets {
          let dir = try shape.materialize(cache: URL(fileURLWithPath: cache))
          for mode in modeList {
           var oursF32: Double?
           for precision in precisions {
            let ours = try measureInChild(dir, name: shape.name, mode: mode, compute: precision)
            if precision == .f32 { oursF32 = ours.tokensPerSecond }
            var theirs: BenchmarkResult?
            if let py {
                do {
                    let r = try PyTorchBaseline.measure(python: py, mode: mode, checkpoint: dir, threads: threads, batch: batch,
                                                        length: length, repetitions: repetitions, storedDType: weightsDtype == .stored,
                                                        autocast: precision == .bf16)
                    theirs = BenchmarkResult(name: shape.name, engine: "pytorch", tokensPerSecond: r.tokensPerSecond,
                                             peakMemoryBytes: r.peakMemoryBytes, threads: threads, mode: mode)
                    theirs?.loadSeconds = r.loadSeconds
                    theirs?.weightsDType = weightsDtype.rawValue
                    theirs?.compute = precision == .bf16 ? "autocast-bf16" : "f32"
                } catch {
                    FileHandle.standardError.write(Data("note: \(error)\n".utf8))
                }
            }
            if json {
                for r in [ours, theirs].compactMap({ $0 }) {
                    try printJSON(encoding: r)
                }
            } else {
                let label = precision == .bf16 ? mode + " bf16" : mode
                var line = shape.name.padding(toLength: 22, withPad: " ", startingAt: 0) + label.padding(toLength: 20, withPad: " ", startingAt: 0)
                line += String(format: " %13.1f %9.0f %9.0f %9.2f", ours.tokensPerSecond, Double(ours.peakMemoryBytes) / 1e6,
                               Double(ours.estimatedPeakBytes ?? 0) / 1e6, ours.loadSeconds ?? 0)
                if let theirs {
                    line += String(format: " %13.1f %9.0f %9.2f %6.2fx", theirs.tokensPerSecond, Double(theirs.peakMemoryBytes) / 1e6,
                                   theirs.loadSeconds ?? 0, ours.tokensPerSecond / theirs.tokensPerSecond)
                }
                if precision == .bf16, let oursF32 { line += String(format: "   %.2fx f32", ours.tokensPerSecond / oursF32) }
                print(line)
            }
           }
          }
        }
    }

    /// Self-speculative decoding on one checkpoint, ours beside transformers' (SpeculationBenchmark).
    func runSpeculation() throws {
        let exitList = try exits.map { text in
            try text.split(separator: ",").map { part -> Int in
                guard let e = Int(part.trimmingCharacters(in: .whitespaces)), e >= 1 else { throw PruneError("--exits", "\"\(text)\" is not a list of exit layers such as 4,8,12") }
                return e
            }
        } ?? []
        let py = noPytorch ? nil : PyTorchBaseline.findPython(explicit: python)
        for line in SystemReport.lines(threads: threads) { print(line) }
        let source = ModelSource(path: model[0], parallelism: Parallelism(threads: threads))
        let r = try SpeculationBenchmark.measure(source, dataset: URL(fileURLWithPath: promptsFrom ?? ""), prompts: prompts,
                                                 promptTokens: promptTokens, newTokens: newTokens,
                                                 calibration: calibration.map { URL(fileURLWithPath: $0) }, python: py, exits: exitList, threads: threads)
        if json { printJSON(try JSONSerialization.jsonObject(with: try JSONEncoder.sorted.encode(r))); return }
        print(String(format: "speculate: %@, %d prompts of %d tokens, %d new tokens each, %d threads", r.model, r.prompts, r.promptTokens, r.newTokens, r.threads))
        print(String(format: "ours:         plain %.1f tokens/s; exit:auto %.1f tokens/s (%.2f× plain; %@); output = plain greedy on %d/%d prompts",
                     r.plainTokensPerSecond, r.autoTokensPerSecond, r.autoSpeedup, LayerSkipStudy.choiceSummary(r.autoChoices), r.autoIdentical, r.prompts))
        if let plain = r.transformersPlainTokensPerSecond {
            print(String(format: "transformers: plain %.1f tokens/s (our plain %.2f×; same ids on %d/%d prompts)", plain, r.plainTokensPerSecond / plain,
                         r.enginesAgree ?? 0, r.prompts))
            for e in r.transformersEarlyExit {
                print(String(format: "              assistant_early_exit=%d: %.1f tokens/s (%.2f× its plain); output = its plain on %d/%d prompts",
                             e.exit, e.tokensPerSecond, e.tokensPerSecond / plain, e.identical, r.prompts))
            }
            if let best = r.bestTransformers {
                print(String(format: "exit:auto vs transformers' best (assistant_early_exit=%d): %.2f×", best.exit, r.autoTokensPerSecond / best.tokensPerSecond))
            }
        } else {
            print("transformers: not measured (" + (noPytorch ? "--no-pytorch" : "no Python with torch and transformers found") + ")")
        }
    }

    /// Batch-1 decoding per shape (see DecodeBenchmark), beside transformers and llama.cpp where they are there.
    func runDecode(_ targets: [BenchmarkShape]) throws {
        let parallelism = Parallelism(threads: threads)
        let bandwidth = ReadBandwidth.measure(parallelism: parallelism)
        let py = noPytorch ? nil : PyTorchBaseline.findPython(explicit: python)
        if !noPytorch && py == nil { FileHandle.standardError.write(Data("note: no Python with torch + transformers found; transformers figures skipped\n".utf8)) }
        if !json {
            SystemReport.lines(threads: threads).forEach { print($0) }
            print(String(format: "memory read bandwidth: %.1f GB/s (streaming read of 1 GiB on %d threads); prompt %d tokens, then %d new tokens greedy, batch 1",
                         bandwidth / 1e9, threads, promptTokens, newTokens))
            print("bound: the same read over a buffer of the bytes a token reads (weights + KV cache), again and again as decoding "
                  + "reads them (from the last-level cache where they fit)")
            print("model".padding(toLength: 22, withPad: " ", startingAt: 0) + "dtype  prefill/s  decode/s  read GB/s  bound/s  %bound"
                  + "  verify 2/4/5/8 (steps)   hf prefill/s  hf decode/s  ×hf   llama.cpp pp/s  tg/s   ×llama")
        }
        for shape in targets {
            let dir = try shape.materialize(cache: URL(fileURLWithPath: cache))
            let model = try LlamaModel.load(directory: dir, weightsDType: weightsDtype, parallelism: parallelism)
            var r = DecodeBenchmark.measure(model: model, name: shape.name, promptTokens: min(promptTokens, model.config.maxPositionEmbeddings / 2),
                                            newTokens: min(newTokens, model.config.maxPositionEmbeddings / 2), repetitions: repetitions,
                                            memoryReadBytesPerSecond: bandwidth)
            let stored = model.lmHead.element != .f32
            if let py {
                do {
                    let t = try TransformersDecodeBaseline.measure(python: py, checkpoint: dir, threads: threads, promptTokens: r.promptTokens,
                                                                   newTokens: r.newTokens, repetitions: repetitions, storedDType: stored)
                    (r.transformersPrefillTokensPerSecond, r.transformersDecodeTokensPerSecond) = (t.prefill, t.decode)
                } catch { r.notes.append("\(error)") }
            }
            if let llamaCpp {
                if let py {
                    do {
                        let l = try LlamaCppDecodeBaseline.measure(directory: URL(fileURLWithPath: llamaCpp), python: py, checkpoint: dir,
                                                                   name: shape.name, dtype: r.weightsDType, cache: URL(fileURLWithPath: cache),
                                                                   threads: threads, promptTokens: r.promptTokens, newTokens: r.newTokens,
                                                                   repetitions: repetitions)
                        (r.llamaCppPrefillTokensPerSecond, r.llamaCppDecodeTokensPerSecond) = (l.prefill, l.decode)
                    } catch { r.notes.append("\(error)") }
                } else {
                    r.notes.append("llama.cpp: converting the checkpoint needs a Python with torch + transformers")
                }
            }
            if json {
                try printJSON(encoding: r)
                continue
            }
            var line = shape.name.padding(toLength: 22, withPad: " ", startingAt: 0) + r.weightsDType.padding(toLength: 5, withPad: " ", startingAt: 0)
            line += String(format: " %10.1f %9.1f %10.1f %8.1f %6.0f%%", r.prefillTokensPerSecond, r.decodeTokensPerSecond,
                           r.readBytesPerSecond / 1e9, r.boundTokensPerSecond, 100 * r.shareOfBound)
            let v = DecodeBenchmark.verificationRows.map { String(format: "%.2f", r.verificationSteps["\($0)"] ?? 0) }.joined(separator: "/")
            line += "  " + v.padding(toLength: 23, withPad: " ", startingAt: 0)
            if let p = r.transformersPrefillTokensPerSecond, let d = r.transformersDecodeTokensPerSecond {
                line += String(format: " %12.1f %12.1f %5.2f", p, d, r.decodeTokensPerSecond / d)
            } else {
                line += String(repeating: " ", count: 31)
            }
            if let p = r.llamaCppPrefillTokensPerSecond, let d = r.llamaCppDecodeTokensPerSecond {
                line += String(format: " %15.1f %6.1f %6.2f", p, d, r.decodeTokensPerSecond / d)
            }
            print(line)
            for note in r.notes { print("  note: " + note) }
        }
    }

    /// Where each step's time goes (see StepBreakdown), one table per shape and mode, after the limits.
    func runBreakdown(_ targets: [BenchmarkShape], modes: [String]) throws {
        let compute = precision.compute ?? .f32
        try compute.checkAvailable()
        let limits = StepBreakdown.limits(threads: threads, compute: compute)
        if !json {
            SystemReport.lines(threads: threads).forEach { print($0) }
            let peak = limits.peakGFLOPs.map { String(format: "%.1f GFLOP/s, ", $0) } ?? ""
            print("limits on \(threads) threads: sgemm \(limits.sgemmShape) measured "
                  + String(format: "%.1f GFLOP/s (Gemm.multiply); ", limits.sgemmGFLOPs) + "FMA peak \(peak)\(limits.peakNote)")
            if let g = limits.bf16GemmGFLOPs, let dnnl = try? DNNLRuntime.load() {
                let peak = limits.bf16PeakGFLOPs.map { String(format: "%.1f GFLOP/s, ", $0) } ?? ""
                print("bf16 (--compute bf16, \(dnnl.summary)): the same product measured " + String(format: "%.1f GFLOP/s; ", g)
                      + "bf16 peak \(peak)\(limits.bf16PeakNote ?? "")")
            }
        }
        for shape in targets {
            let dir = try shape.materialize(cache: URL(fileURLWithPath: cache))
            let model = try LlamaModel.load(directory: dir, weightsDType: weightsDtype, parallelism: Parallelism(threads: threads))
            try model.compute(in: compute)
            for mode in modes {
                guard let m = StepBreakdown.Mode(rawValue: mode) else { continue }
                let r = try StepBreakdown.run(model: model, name: shape.name, mode: m, batch: batch,
                                              length: min(length, model.config.maxPositionEmbeddings), steps: repetitions, limits: limits)
                if json {
                    try printJSON(encoding: r)
                } else {
                    printBreakdown(r)
                }
            }
        }
    }

    func printBreakdown(_ r: StepBreakdown) {
        print("")
        print("\(r.model) \(r.mode.rawValue), B=\(r.batch) T=\(r.length), \(r.threads) threads: "
              + String(format: "%.1f ms per step (mean of %d), CPU %.0f%% of the threads' time", r.stepMilliseconds, r.steps,
                       100 * r.stepCPUUtilisation))
        print("part".padding(toLength: 30, withPad: " ", startingAt: 0) + "   ms/step  % step   GFLOP/s  % sgemm   CPU %")
        func line(_ row: StepBreakdown.Row) {
            var text = row.part.padding(toLength: 30, withPad: " ", startingAt: 0)
                + String(format: " %9.1f %6.1f%%", row.milliseconds, 100 * row.share)
            if let g = row.gflopsPerSecond {
                text += String(format: " %9.1f %7.0f%%", g, 100 * g / r.limits.sgemmGFLOPs)
            } else {
                text += String(repeating: " ", count: 18)
            }
            if let u = row.cpuUtilisation { text += String(format: " %6.0f%%", 100 * u) }
            print(text)
        }
        r.parts.forEach(line)
        print(String(repeating: "-", count: 84))
        r.summary.forEach(line)
    }

    /// Our finetune and PEFT side by side on the same windows (see HealingBenchmark).
    func runHealing() throws {
        guard let healModel, let healDataset, let healValid else {
            throw PruneError("--heal", "needs --heal-model, --heal-dataset and --heal-valid")
        }
        var settings = HealingBenchmark.Settings(model: URL(fileURLWithPath: healModel), dataset: URL(fileURLWithPath: healDataset),
                                                 valid: URL(fileURLWithPath: healValid))
        settings.steps = healSteps
        settings.batch = batch
        settings.context = length
        settings.threads = threads
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prune-heal-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let windows = try HealingBenchmark.writeWindows(settings, into: dir)
        SystemReport.lines(threads: threads).forEach { print($0) }
        print("healing \(healModel): \(settings.steps) steps × \(batch) windows of \(length) (\(windows.trainWindows) training windows), LoRA r=\(settings.rank) alpha \(Int(settings.alpha)), lr \(settings.lr), warmup \(settings.warmup), cosine")
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.deletingLastPathComponent().appendingPathComponent("finetune")
        var rows = [try HealingBenchmark.runOurs(finetune: exe, settings, train: windows.train, valid: windows.valid,
                                                 output: dir.appendingPathComponent("ours"))]
        if !noPytorch, let py = PyTorchBaseline.findPython(explicit: python) {
            rows.append(try HealingBenchmark.runPEFT(python: py, settings, train: windows.train, valid: windows.valid))
        }
        print("engine                 wall s   peak GB   tok/s   held-out ppl before → after")
        for r in rows {
            print(r.engine.padding(toLength: 20, withPad: " ", startingAt: 0)
                  + String(format: " %8.0f %9.2f %7.0f   %8.2f → %.2f", r.seconds, Double(r.peakMemoryBytes) / 1e9,
                           r.tokensPerSecond, r.perplexityBefore, r.perplexityAfter))
        }
        if rows.count == 2 {
            print(String(format: "ratio: time %.2f×, peak memory %.2f×, perplexity after %.3f×", rows[0].seconds / rows[1].seconds,
                         Double(rows[0].peakMemoryBytes) / Double(rows[1].peakMemoryBytes), rows[0].perplexityAfter / rows[1].perplexityAfter))
        }
    }

    /// Re-runs this executable on one checkpoint so that VmHWM is that model's alone.
    func measureInChild(_ dir: URL, name: String, mode: String, compute: ComputePrecision) throws -> BenchmarkResult {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let exePath = exe.contains("/") ? exe : (Bundle.main.executablePath ?? exe)
        let r = try ChildProcess.run(exePath, ["bench", "--child", dir.path, "--batch", "\(batch)", "--length", "\(length)",
                                                  "--repetitions", "\(repetitions)", "--threads", "\(threads)",
                                                  "--child-mode", mode, "--weights-dtype", weightsDtype.rawValue,
                                                  "--compute", compute.rawValue])
        guard r.status == 0, let line = r.stdout.split(separator: "\n").last,
              var result = try? JSONDecoder().decode(BenchmarkResult.self, from: Data(line.utf8)) else {
            throw PruneError(dir.path, "benchmark child failed: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        result.name = name
        return result
    }

    func runChild(_ dir: URL) throws {
        let parallelism = Parallelism(threads: threads)
        let config = try LlamaConfig.load(dir.appendingPathComponent("config.json"))
        let tEstimate = min(length, config.maxPositionEmbeddings)
        let lora = MemoryEstimate.loraParameters(config: config, rank: 8, targets: Projection.allCases, layers: config.numHiddenLayers)
        var estimate = childMode == "forward"
            ? MemoryEstimate.inference(config: config, batch: batch, context: tEstimate, threads: threads)
            : MemoryEstimate.training(config: config, batch: batch, context: tEstimate, threads: threads, trainableParameters: lora,
                                      separateTrainable: lora, loraWidth: 8 * Projection.allCases.count,
                                      checkpointing: childMode == "train-checkpointed")
        estimate.setWeights(from: try CheckpointTensors(directory: dir), dtype: weightsDtype)
        if precision.compute == .bf16 { estimate.addBF16Copies(config: config, backward: childMode != "forward") }
        try estimate.check(available: try ModelSource.memoryAvailable(), job: "bench \(childMode)", model: dir)
        let started = DispatchTime.now()
        let model = try LlamaModel.load(directory: dir, weightsDType: weightsDtype, parallelism: parallelism)
        try model.compute(in: precision.compute ?? .f32)
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let t = min(length, model.config.maxPositionEmbeddings)
        let tps: Double
        if childMode == "forward" {
            tps = ForwardBenchmark.tokensPerSecond(model: model, batch: batch, length: t, repetitions: repetitions)
        } else {
            tps = try TrainingBenchmark.run(model: model, steps: repetitions, batch: batch, length: t, rank: 8,
                                            checkpointing: childMode == "train-checkpointed").tokensPerSecond
        }
        var r = BenchmarkResult(name: dir.lastPathComponent, engine: "prune", tokensPerSecond: tps,
                                peakMemoryBytes: ProcessMemory.peakResidentBytes, threads: threads, mode: childMode)
        r.loadSeconds = loadSeconds
        r.weightsDType = weightsDtype.rawValue
        r.compute = model.compute.rawValue
        r.estimatedPeakBytes = estimate.total
        try printJSON(encoding: r)
    }

    /// Checkpoints/stories260K beside the executable's package (see DefaultCheckpoint).
    static func defaultCheckpoint() -> URL {
        DefaultCheckpoint.url
    }
}
