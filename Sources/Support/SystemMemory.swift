// How much memory a job may use on this machine: MemAvailable from /proc/meminfo, lowered by a cgroup's
// limit (a container's memory.max minus what it already uses), lowered again by a limit the user sets
// (PRUNE_MEMORY_LIMIT, read by the CLI and passed in). Nil where none of these can be read.
import Foundation

/// The memory this process can still allocate.
public enum SystemMemory {
    /// Bytes available now: the smallest of MemAvailable, the cgroup's remaining limit and `limit`.
    public static func available(limit: Int? = nil) -> Int? {
        let candidates = [memAvailable(), cgroupRemaining(), limit].compactMap { $0 }
        return candidates.min()
    }

    /// /proc/meminfo's MemAvailable (what can be allocated without swapping), in bytes.
    public static func memAvailable(meminfo: String? = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) -> Int? {
        guard let meminfo else { return nil }
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let kb = Int(fields[1]) else { return nil }
            return kb.multipliedReportingOverflow(by: 1024).overflow ? Int.max : kb * 1024
        }
        return nil
    }

    /// A cgroup v2 (memory.max − memory.current) or v1 (limit − usage) limit on this process, in bytes.
    static func cgroupRemaining() -> Int? {
        func number(_ path: String) -> Int? {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        for (limit, usage) in [("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                               ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")] {
            // "max" (no limit) does not parse; v1 writes a huge number for none.
            if let l = number(limit), l < Int.max / 2 { return max(0, l - (number(usage) ?? 0)) }
        }
        return nil
    }

    /// "8G", "512M", "64k" or a byte count (1024-based suffixes, case-insensitive); nil if malformed.
    public static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = t.hasSuffix("B") ? String(t.dropLast()) : t
        var scale = 1
        if let last = digits.last, let u = units[last] { scale = u; digits.removeLast() }
        guard let value = Double(digits), value.isFinite, value >= 0, value * Double(scale) < Double(Int.max) else { return nil }
        return Int(value * Double(scale))
    }

    /// Bytes as "1.23 GiB", "45.6 MiB" or "789 KiB".
    public static func describe(_ bytes: Int) -> String {
        let b = Double(bytes)
        if b >= Double(1 << 30) { return String(format: "%.2f GiB", b / Double(1 << 30)) }
        if b >= Double(1 << 20) { return String(format: "%.1f MiB", b / Double(1 << 20)) }
        return String(format: "%.0f KiB", b / 1024)
    }
}
