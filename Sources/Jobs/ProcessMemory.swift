// Peak resident memory of this process, from /proc/self/status (VmHWM).
import Foundation

public enum ProcessMemory {
    /// Peak resident set size in bytes (0 where /proc is unavailable).
    public static var peakResidentBytes: Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            // "VmHWM:\t   41234 kB", but "VmHWM:\t16123456 kB" from 10 GB up: split on tabs too.
            let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }
}
