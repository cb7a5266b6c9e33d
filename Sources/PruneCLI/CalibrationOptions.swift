// The calibration sample options shared by `analyze` and `cut --block/--metric --dataset`: one declaration, the
// library's defaults and check (AnalyzeOptions).
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
        // The dataset is not known here (cut's is optional); the sizes are all AnalyzeOptions checks.
        try asUsageError { try analysis(of: "").validate() }
    }

    /// The analysis of `dataset` with these settings (the rest as `AnalyzeOptions` defaults them).
    func analysis(of dataset: String) -> AnalyzeOptions {
        AnalyzeOptions(dataset: URL(fileURLWithPath: dataset), samples: samples, context: context, batchSize: batchSize)
    }
}
