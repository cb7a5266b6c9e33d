// `prune`: the command-line face of the toolkit. One root command with subcommands; every failure a user
// can act on is one line on stderr and a non-zero exit.
import ArgumentParser
import CLISupport
import Jobs
import Tensor

@main
struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Find the Llama layers that do least, cut them out, and measure the result.",
        version: SystemReport.lines(threads: Parallelism.allCores.threads).joined(separator: "\n"),
        subcommands: [TokenizeCommand.self, GenerateCommand.self, EvalCommand.self, BenchCommand.self, AnalyzeCommand.self,
                      CutCommand.self, MergeCommand.self, ExportCommand.self, RunCommand.self]
    )

    /// Runs the command; every failure becomes one line on stderr and a non-zero exit.
    static func main() { ToolMain.run(Prune.self) }
}
