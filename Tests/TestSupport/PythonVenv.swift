// The development Python (torch, transformers, PEFT, lm-eval) for optional cross-checks against the tools users
// use; tests that need it skip with a printed reason when it is absent.
import Foundation
import Support

/// ~/.cache/prune-dev/venv's Python, or $PRUNE_PYTHON.
public enum PythonVenv {
    /// The interpreter when it exists and imports torch, transformers and peft; nil otherwise.
    public static let python: String? = interpreter(importing: "torch, transformers, peft")

    /// The interpreter when it imports torch, transformers and lm_eval (lm-evaluation-harness: `pip install lm-eval`).
    public static let lmEval: String? = interpreter(importing: "torch, transformers, lm_eval")

    /// The interpreter when it imports gguf (PyPI's GGUF reader); nil otherwise.
    public static let gguf: String? = interpreter(importing: "numpy, gguf")

    /// The first of $PRUNE_PYTHON and the venv's python that exists and imports `modules` ("a, b") with `environment`.
    static func interpreter(importing modules: String, environment: [String: String] = [:]) -> String? {
        let candidates = [ProcessInfo.processInfo.environment["PRUNE_PYTHON"],
                          NSHomeDirectory() + "/.cache/prune-dev/venv/bin/python"].compactMap { $0 }
        for path in candidates where FileManager.default.isExecutableFile(atPath: path) {
            if let r = try? ChildProcess.run(path, ["-c", "import \(modules)"], environment: environment), r.status == 0 { return path }
        }
        return nil
    }

    /// Runs `script` (Python source) with `args` and `environment`; throws with its stderr when it fails.
    public static func run(_ python: String, script: String, _ args: [String], environment: [String: String] = [:]) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("prune-check-\(UUID().uuidString).py")
        try Data(script.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try ChildProcess.run(python, [file.path] + args, environment: environment.merging(["OMP_NUM_THREADS": "2"]) { given, _ in given })
        guard r.status == 0 else { throw PruneError(file: file, "python failed: \(r.stderr.suffix(2000))") }
        return r.stdout
    }
}
