// Block Influence of layer i (ShortGPT): BI_i = 1 − mean over tokens of cos(h_i, h_{i+1}), how much the
// layer turns the residual stream passing through it. Low BI marks a layer that does little.
// Dimension glossary: L layers.

/// Running sums of cos(h_i, h_{i+1}) over token positions, in Double.
public struct BlockInfluenceSums: Sendable {
    /// L
    public let layerCount: Int
    private var sums: [Double]   // (L)
    /// Positions added.
    public private(set) var count = 0

    public init(layerCount: Int) {
        self.layerCount = layerCount
        sums = [Double](repeating: 0, count: layerCount)
    }

    /// Adds one position.
    public mutating func add(_ cosines: HiddenStateCosines) {
        precondition(cosines.stateCount == layerCount + 1, "cosines of \(cosines.stateCount) states for \(layerCount) layers")
        for i in 0..<layerCount { sums[i] += cosines.cosine(i, i + 1) }
        count += 1
    }

    /// Adds the positions another accumulator counted.
    public mutating func merge(_ other: BlockInfluenceSums) {
        precondition(other.layerCount == layerCount, "merging sums of different layer counts")
        for i in sums.indices { sums[i] += other.sums[i] }
        count += other.count
    }

    /// The sums and the count, flat (what MPI ranks exchange).
    var flattened: [Double] { sums + [Double(count)] }

    init(layerCount: Int, flattened: ArraySlice<Double>) {
        self.init(layerCount: layerCount)
        precondition(flattened.count == sums.count + 1, "\(flattened.count) values for \(sums.count + 1)")
        sums = Array(flattened.dropLast())
        count = Int(flattened.last!)
    }

    /// BI_i for i = 0…L−1 (NaN before any position was added).
    public var values: [Double] { sums.map { 1 - $0 / Double(count) } }
}
