import Foundation

/// Where the shipped default checkpoint (Checkpoints/stories260K) is.
enum DefaultCheckpoint {
    /// $PRUNE_CHECKPOINTS/stories260K, else the first Checkpoints/stories260K found walking up from the working
    /// directory or from the executable (a release build lives in .build/release under the project root).
    static var url: URL {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["PRUNE_CHECKPOINTS"] {
            return URL(fileURLWithPath: env).appendingPathComponent("stories260K")
        }
        let cwd = URL(fileURLWithPath: fm.currentDirectoryPath)
        let exeDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for base in [cwd, exeDir] {
            var d = base
            while d.path != "/" {
                let c = d.appendingPathComponent("Checkpoints/stories260K")
                if fm.fileExists(atPath: c.appendingPathComponent("config.json").path) { return c }
                d.deleteLastPathComponent()
            }
        }
        return cwd.appendingPathComponent("Checkpoints/stories260K")
    }
}
