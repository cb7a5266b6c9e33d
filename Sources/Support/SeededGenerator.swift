// The one seeded random number generator of the toolkit (SplitMix64): sampling, random initialisation,
// LoRA A initialisation, the training batcher's shuffle, benchmarks and tests all draw from it, so that a
// seed means the same sequence everywhere.

/// SplitMix64: small, fast, seedable; its output depends on the seed alone.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        defer { state &+= Self.increment }
        return Self.value(seed: state, index: 0)
    }

    private static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// The output number `index` (0-based) of the generator seeded with `seed`, without drawing the ones before it:
    /// SplitMix64's state is a counter, so values computed in parallel or in any order are the sequence's.
    public static func value(seed: UInt64, index: UInt64) -> UInt64 {
        var z = seed &+ (index &+ 1) &* increment
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
