// The calibration sample options shared by `analyze` and `cut --block/--metric --dataset`: one declaration, the
// library's defaults (AnalyzeOptions), one check.
import ArgumentParser
import Foundation
import Jobs

/// --samples, --context, --batch-size of a layer analysis.
struct CalibrationOptions: ParsableArguments {
    @Option(name: .long, help: "Calibration records to use: the first N of the dataset with two or more tokens.")
    var samples = AnalyzeOptions.defaultSamples

    @Option(name: .long, help: "Tokens per calibration sample (longer records are truncated).")
    var context = AnalyzeOptions.defaultContext

    @Option(name: .long, help: "Calibration samples per forward pass.")
    var batchSize = AnalyzeOptions.defaultBatchSize

    func validate() throws {
        guard samples >= 1 else { throw ValidationError("--samples must be positive") }
        guard context >= 2 else { throw ValidationError("--context must be at least 2") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be positive") }
    }

    /// The analysis of `dataset` with these settings (the rest as `AnalyzeOptions` defaults them).
    func analysis(of dataset: String) -> AnalyzeOptions {
        AnalyzeOptions(dataset: URL(fileURLWithPath: dataset), samples: samples, context: context, batchSize: batchSize)
    }
}
