// Block Influence of layer i (ShortGPT): BI_i = 1 − mean over tokens of cos(h_i, h_{i+1}), how much the
// layer turns the residual stream passing through it. Low BI marks a layer that does little.
// Dimension glossary: L layers.

/// Running sums of cos(h_i, h_{i+1}) over token positions, in Double.
public struct BlockInfluenceSums: Sendable {
    /// L
    public let layerCount: Int
    private var sums: PositionSums   // (L)
    /// Positions added.
    public var count: Int { sums.count }

    public init(layerCount: Int) {
        self.layerCount = layerCount
        sums = PositionSums(cells: layerCount)
    }

    /// Adds one position.
    public mutating func add(_ cosines: HiddenStateCosines) {
        precondition(cosines.stateCount == layerCount + 1, "cosines of \(cosines.stateCount) states for \(layerCount) layers")
        for i in 0..<layerCount { sums.add(cosines.cosine(i, i + 1), at: i) }
        sums.countPosition()
    }

    /// Adds the positions another accumulator counted.
    public mutating func merge(_ other: BlockInfluenceSums) {
        precondition(other.layerCount == layerCount, "merging sums of different layer counts")
        sums.merge(other.sums)
    }

    /// The sums and the count, flat (what MPI ranks exchange).
    var flattened: [Double] { sums.flattened }

    init(layerCount: Int, flattened: ArraySlice<Double>) {
        self.layerCount = layerCount
        sums = PositionSums(cells: layerCount, flattened: flattened)
    }

    /// BI_i for i = 0…L−1 (NaN before any position was added).
    public var values: [Double] { sums.values.map { 1 - $0 / Double(count) } }
}
