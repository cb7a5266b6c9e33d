// The calibration sample options shared by `analyze` and `cut --block/--metric --dataset`: one declaration, the
// library's defaults and check (AnalyzeOptions).
import ArgumentParser
import CLISupport
import Foundation
import Jobs

/// --samples, --context, --batch-size of a layer analysis.
struct CalibrationOptions: ParsableArguments {
    @Option(name: .long, help: "Calibration records to use: the first N of the dataset with two or more tokens.")
    var samples = AnalyzeOptions.defaultSamples

    @OptionGroup var windows: WindowOptions<CalibrationWindows>

    func validate() throws {
        // The dataset is not known here (cut's is optional); the sizes are all AnalyzeOptions checks.
        try asUsageError { try analysis(of: "").validate() }
    }

    /// The analysis of `dataset` with these settings (the rest as `AnalyzeOptions` defaults them).
    func analysis(of dataset: String) -> AnalyzeOptions {
        AnalyzeOptions(dataset: URL(fileURLWithPath: dataset), samples: samples, context: windows.context ?? AnalyzeOptions.defaultContext,
                       batchSize: windows.batchSize ?? AnalyzeOptions.defaultBatchSize)
    }
}

/// A calibration analysis's windows: one sample each, AnalyzeOptions' defaults.
enum CalibrationWindows: WindowDefaults {
    static let contextHelp = "Tokens per calibration sample (longer records are truncated; default \(AnalyzeOptions.defaultContext))."
    static let batchSizeHelp = "Calibration samples per forward pass (default \(AnalyzeOptions.defaultBatchSize))."
}
