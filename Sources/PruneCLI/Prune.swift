// `prune`: the command-line face of the toolkit. One root command with subcommands; every failure a user
// can act on is one line on stderr and a non-zero exit.
import ArgumentParser
import Foundation
import Jobs
import Support
import Tensor

@main
struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Find the Llama layers that do least, cut them out, and measure the result.",
        version: SystemReport.lines(threads: Parallelism.allCores.threads).joined(separator: "\n"),
        subcommands: [TokenizeCommand.self, GenerateCommand.self, EvalCommand.self, BenchCommand.self, AnalyzeCommand.self,
                      CutCommand.self, MergeCommand.self, RunCommand.self]
    )

    /// Runs the command; every failure becomes one line on stderr and a non-zero exit.
    static func main() {
        // SIGINT / SIGTERM: temporary outputs removed, exit 130 / 143 (Support/Interruption.swift).
        Interruption.install()
        do {
            var command = try parseAsRoot()
            // A command that computes needs OpenBLAS: say so in one line if it cannot be loaded.
            do { _ = try BLASRuntime.load() } catch { throw PruneError("", "\(error)") }
            try command.run()
        } catch let error as PruneError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            Foundation.exit(1)
        } catch {
            // --help and --version are "errors" that exit 0 with their text; everything else is one line.
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }
            let message = Prune.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("error: \(message) (see `prune help`)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }
}
