// Running another program and capturing what it prints (benchmark children, the PyTorch baseline, CLI tests).
import Foundation

/// A finished child process.
public struct ChildProcessResult: Sendable {
    /// The exit status, or the signal number when `signaled`.
    public var status: Int32
    /// Whether a signal ended the child (rather than an exit).
    public var signaled: Bool = false
    public var stdout: String
    public var stderr: String
}

public enum ChildProcess {
    /// Runs `executable args…` to completion with `environment` added to ours, optionally in `directory`.
    public static func run(_ executable: String, _ args: [String], environment: [String: String] = [:],
                           directory: URL? = nil) throws -> ChildProcessResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        if !environment.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for (k, v) in environment { env[k] = v }
            p.environment = env
        }
        if let directory { p.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
        let errBox = ReadBox()
        let errThread = Thread { errBox.data = err.fileHandleForReading.readDataToEndOfFile() }
        errThread.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errThread.isFinished { usleep(1000) }
        return ChildProcessResult(status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal,
                                  stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errBox.data, as: UTF8.self))
    }

    /// Bytes read on another thread (read after that thread has finished).
    private final class ReadBox: @unchecked Sendable { var data = Data() }
}
