// Paths to ../shared ground truth and helpers shared by the test targets.
import Foundation
import Support

/// Locations of the ground-truth files beside the project root.
public enum Fixtures {
    /// The project root (the directory holding Package.swift).
    public static let projectRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// ../shared beside the project root.
    public static let shared: URL = projectRoot.deletingLastPathComponent().appendingPathComponent("shared")

    /// A fresh temporary directory, removed by the caller (or left for the OS).
    public static func temporaryDirectory(_ name: String = "prune-test") -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs the built `prune` executable (a sibling of the test bundle in the build folder).
public enum PruneExecutable {
    public static var url: URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments.first { $0.hasSuffix(".xctest") } ?? Bundle.main.executablePath ?? "")
        return bundle.deletingLastPathComponent().appendingPathComponent("prune")
    }

    /// Exit status, stdout and stderr of `prune args…`.
    public static func run(_ args: [String], currentDirectory: URL? = nil, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try ChildProcess.run(url.path, args, environment: environment, directory: currentDirectory)
        return (r.status, r.stdout, r.stderr)
    }
}
