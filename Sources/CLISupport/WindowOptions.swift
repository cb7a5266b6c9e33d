// --context and --batch-size, declared once for every command that cuts its data into windows (analyze, cut, eval,
// finetune). What they mean and default to is the command's library type's (AnalyzeOptions, EvaluationOptions,
// FinetuneOptions): a command names it through a `WindowDefaults` type, whose text its --help shows.
import ArgumentParser

/// A command's reading of --context and --batch-size: their help, each with the default its library type applies.
public protocol WindowDefaults {
    /// --context's help, e.g. "Tokens per window (default 256)."
    static var contextHelp: String { get }
    /// --batch-size's help, e.g. "Windows per micro-batch (default 4)."
    static var batchSizeHelp: String { get }
}

/// --context and --batch-size. Each is nil unless given: the command applies its library default, and can tell a
/// flag left out (finetune's --resume keeps the saved value; eval refuses --context with --task).
public struct WindowOptions<Defaults: WindowDefaults>: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(Defaults.contextHelp))
    public var context: Int?

    @Option(name: .long, help: ArgumentHelp(Defaults.batchSizeHelp))
    public var batchSize: Int?

    public init() {}
}
