// Paths to ../shared ground truth and helpers shared by the test targets.
import Foundation

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
