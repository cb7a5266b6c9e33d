// The start of both executables (`prune` and `finetune`): an interrupted run removes its temporary outputs,
// OpenBLAS is loaded before a command computes, and every failure a user can act on is one line on stderr
// ("error: FILE: problem") and a non-zero exit.
import ArgumentParser
import Foundation
import Support
import Tensor

/// The `main()` of an executable whose root command is `root`.
public enum ToolMain {
    /// Parses the command line as `root`'s, loads OpenBLAS and runs the command; every failure becomes one line.
    public static func run(_ root: ParsableCommand.Type) {
        // SIGINT / SIGTERM: temporary outputs removed, exit 130 / 143 (Support/Interruption.swift).
        Interruption.install()
        do {
            var command = try root.parseAsRoot()
            // A command that computes needs OpenBLAS: say so in one line if it cannot be loaded.
            do { _ = try BLASRuntime.load() } catch { throw PruneError("", "\(error)") }
            try command.run()
        } catch let error as PruneError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            Foundation.exit(1)
        } catch let error as DNNLRuntime.Unavailable {
            // --compute bf16 where the CPU or oneDNN cannot run it: what is missing, in one line.
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            Foundation.exit(1)
        } catch {
            // --help and --version are "errors" that exit 0 with their text, an ExitCode (130 after an interrupted
            // training run) is the status itself; everything else is one line.
            let code = root.exitCode(for: error)
            if code == .success || error is ExitCode { root.exit(withError: error) }
            let message = root.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            let name = root.configuration.commandName ?? ""
            let help = root.configuration.subcommands.isEmpty ? "\(name) --help" : "\(name) help"
            FileHandle.standardError.write(Data("error: \(message) (see `\(help)`)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }
}
