// The files of a checkpoint directory that travel unchanged with a cut: tokenizer, generation settings,
// chat template, README and the like, i.e. every top-level file that is neither weights nor one of the
// two files the cut rewrites (config.json, model.safetensors.index.json). Weights in other formats
// (.bin, .pth, .gguf, …) and subdirectories would describe the uncut model and are left behind.
import Foundation
import Support

/// Sorting a checkpoint directory's entries into copied and left behind.
public enum CompanionFiles {
    /// Rewritten by the cut, never copied.
    static let rewritten: Set<String> = ["config.json", "model.safetensors.index.json"]
    /// Extensions of weight files (safetensors and other frameworks' formats).
    static let weightExtensions: Set<String> = ["safetensors", "bin", "pt", "pth", "ckpt", "gguf", "h5", "msgpack", "onnx", "npz"]

    /// Top-level files of `directory` to copy, and entries left behind (weights other than the
    /// checkpoint's own `weightFiles`, subdirectories), both sorted by name. Hidden entries (".git",
    /// editor files) are ignored.
    public static func sort(_ directory: URL, weightFiles: Set<String>) throws -> (copied: [URL], leftBehind: [String]) {
        let fm = FileManager.default
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: directory.path).sorted() } catch {
            throw PruneError(file: directory, "cannot list the directory: \(error.localizedDescription)")
        }
        var copied: [URL] = [], leftBehind: [String] = []
        for name in names where !name.hasPrefix(".") && !rewritten.contains(name) && !weightFiles.contains(name) {
            let url = directory.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            _ = fm.fileExists(atPath: url.path, isDirectory: &isDirectory)
            if isDirectory.boolValue || weightExtensions.contains(url.pathExtension.lowercased()) {
                leftBehind.append(name)
            } else {
                copied.append(url)
            }
        }
        return (copied, leftBehind)
    }
}
