// Which stages of a run are already done. Each stage has a key: a content hash of its inputs (the model's
// config.json, tensor names, shapes and a sample of values; every byte of a dataset; the key of the stage that
// produced an input, so a change upstream reaches every stage below it) and of its own settings. A finished stage
// leaves OUT/stages/NAME.json with its key and result; a rerun whose key matches and whose outputs exist skips
// the stage and reads the result back, so a run interrupted anywhere resumes at the stage it stopped in.
import Checkpoint
import Foundation
import Jobs
import Support

/// FNV-1a 64 over the bytes given, as 16 hex digits.
struct ContentHash {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        value = h
    }

    mutating func add(_ data: Data) { data.withUnsafeBytes { add($0) } }
    mutating func add(_ s: String) { add(Data(s.utf8)); add(Data([0])) }

    var hex: String { String(format: "%016llx", value) }

    /// The hash of `parts` in order.
    static func of(_ parts: [String]) -> String {
        var h = ContentHash()
        for p in parts { h.add(p) }
        return h.hex
    }

    /// Every byte of a file (datasets).
    static func file(_ url: URL) throws -> String {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw PruneError(file: url, "cannot be read") }
        var h = ContentHash()
        h.add(data)
        return h.hex
    }

    /// A checkpoint: config.json in full, the tensors' names, shapes and sampled values (BaseFingerprint), the
    /// weight files' sizes.
    static func checkpoint(_ directory: URL) throws -> String {
        var h = ContentHash()
        h.add(try Data(contentsOf: directory.appendingPathComponent("config.json")))
        h.add(try BaseFingerprint.of(directory).digest)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for f in files.sorted() where f.hasSuffix(".safetensors") {
            let size = (try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(f).path)[.size] as? Int) ?? 0
            h.add("\(f):\(size)")
        }
        return h.hex
    }

    /// The JSON of a settings value (sorted keys), for a stage key.
    static func settings<T: Encodable>(_ value: T) -> String {
        return String(decoding: (try? JSONEncoder.sortedLine.encode(value)) ?? Data(), as: UTF8.self)
    }
}

/// The record of finished stages in a run directory.
final class StageCache {
    let directory: URL
    /// Names of the stages skipped and run by this process, in order.
    private(set) var skipped: [String] = []
    private(set) var ran: [String] = []

    init(run: URL) {
        directory = run.appendingPathComponent("stages")
    }

    struct Record<T: Codable>: Codable {
        var stage: String
        var key: String
        var finished: String
        var result: T
    }

    /// The stage's result: read back when a record with `key` exists and every path in `outputs` exists, else
    /// computed by `body` (which must write `outputs`) and recorded.
    func stage<T: Codable>(_ name: String, key: String, outputs: [URL] = [], log: JobLog, _ body: () throws -> T) throws -> T {
        let file = directory.appendingPathComponent(name + ".json")
        if let data = FileManager.default.contents(atPath: file.path),
           let record = try? JSONDecoder().decode(Record<T>.self, from: data), record.key == key,
           outputs.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) }) {
            skipped.append(name)
            log.note("stage \(name): done before (key \(key), inputs unchanged), skipped\n")
            return record.result
        }
        if FileManager.default.fileExists(atPath: file.path) { try FileManager.default.removeItem(at: file) }
        log.note("stage \(name): running (key \(key))\n")
        let started = Date()
        let result = try body()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let record = Record(stage: name, key: key, finished: ISO8601DateFormatter().string(from: Date()), result: result)
        try AtomicFile.write(try JSONEncoder.sorted.encode(record), to: file)
        ran.append(name)
        log.note(String(format: "stage %@: finished in %.1f s\n", name, Date().timeIntervalSince(started)))
        return result
    }
}

/// An empty stage result.
struct Done: Codable {}
