import Analysis
import ArgumentParser
import CLISupport
import Checkpoint
import CLISupport
import Cluster
import Foundation
import Jobs
import Support

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Measure which layers and blocks of layers change the residual stream least.",
        discussion: """
        One pass over the first --samples records of the dataset (each cut to --context tokens) collects the hidden states h_0…h_L (h_l enters layer l) and measures, for every block of n layers starting at layer l, the angular distance d(l, n) = arccos(cos(h_l, h_{l+n}))/π at each sample's last token and over all tokens, and each layer's Block Influence 1 − mean cos(h_i, h_{i+1}).

        Layers are 0-based; cutting block (l, n) drops layers l…l+n−1.

        Writes DIR/analysis.json, DIR/analysis.h5 (for h5py), DIR/analysis.svg (heat map of the last-token d, the best block of each size outlined) and DIR/analysis-layers.svg (Block Influence, removal and early-exit loss per layer).

        Under `mpirun -np N` the batches are shared between the ranks and their sums combined; the result is bit for bit that of one process with the same --threads (default: the cores divided by the ranks on the machine), and rank 0 alone writes and prints.
        """)

    @OptionGroup var options: ModelOptions

    @Option(name: .long, help: "Calibration data: .txt, JSONL with \"text\", or JSONL with pre-tokenized \"input_ids\".")
    var dataset: String

    @OptionGroup var calibration: CalibrationOptions
    @OptionGroup var precision: ComputeOption

    @Option(name: .long, help: "Block sizes n to rank, e.g. 1-8 or 2,4,8 (default: 1…L−1).")
    var blockSizes: String?

    @Flag(name: .long, help: "Also measure the loss with each layer removed (about L/2 more forward passes).")
    var removalScan = false

    @Flag(name: .long, help: "Also measure each h_l through the final norm and lm_head: its loss and top-1 agreement.")
    var earlyExit = false

    @Flag(name: .long, help: "Also the logit lens over the first 8 samples: per exit the entropy, agreement with the last layer and the stream's norm (logit-lens.json, logit-lens-layers.svg), and each exit's top token at each position of a prompt (logit-lens.svg).")
    var logitLens = false

    @Option(name: .long, help: "With --logit-lens: the prompt of the picture (default: the first sample's first 16 tokens).")
    var lensPrompt: String?

    @Option(name: [.short, .customLong("output")], help: "Directory for analysis.json, analysis.h5 and the two SVGs (created if missing).")
    var output: String

    @Flag(name: .long, help: "Print the analysis as JSON instead of the table.")
    var json = false

    @Flag(name: .long, help: "Replace an earlier analysis in DIR.")
    var force = false

    func validate() throws {
        if lensPrompt != nil && !logitLens { throw ValidationError("--lens-prompt goes with --logit-lens") }
    }

    func run() throws {
        let comm: Communicator
        do { comm = try Cluster.start() } catch { throw PruneError("mpirun", "\(error)") }
        try comm.endingTheJobOnFailure {
            try run(communicator: comm)
            comm.finalize()
        }
    }

    func run(communicator comm: Communicator) throws {
        var analysisOptions = calibration.analysis(of: dataset)
        (analysisOptions.blockSizes, analysisOptions.removalScan, analysisOptions.earlyExit) = (blockSizes, removalScan, earlyExit)
        (analysisOptions.logitLens, analysisOptions.lensPrompt) = (logitLens, lensPrompt)
        let result: AnalyzeResult
        do {
            result = try AnalyzeJob.run(options.source(compute: precision.compute), options: analysisOptions, output: URL(fileURLWithPath: output),
                                        force: force, quiet: json, progress: json ? nil : ProgressPrinter().sink, communicator: comm)
        } catch let nonFinite as AnalyzeJob.NonFiniteAnalysis {
            if json { print(String(decoding: nonFinite.json, as: UTF8.self)) }
            throw nonFinite.error
        }
        guard comm.isRoot else { return }
        if json {
            print(String(decoding: try JSONEncoder.sorted.encode(result.analysis), as: UTF8.self))
        } else {
            print(AnalysisReport.text(result.analysis), terminator: "")
            print("\nwrote " + result.files.map(\.path).joined(separator: ", "))
        }
    }
}
