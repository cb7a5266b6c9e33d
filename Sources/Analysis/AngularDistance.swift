// Angular distance of the block that starts at layer l and spans n layers:
// d(l, n) = arccos(cos(h_l, h_{l+n})) / π, 0 for identical directions, 1 for opposite ones. Cutting that
// block (layers l…l+n−1) is cheapest where d is small: the block barely turns the residual stream.
// Dimension glossary: L layers; the matrix is (L+1, L+1) indexed [n][l], defined for n ≥ 1, l + n ≤ L.
import Foundation

/// Running sums of d(l, n) over token positions, in Double.
public struct AngularDistanceSums: Sendable {
    /// L
    public let layerCount: Int
    /// Σ d over the positions added, (L+1)·(L+1) indexed [n·(L+1) + l].
    private var sums: PositionSums
    /// Positions added.
    public var count: Int { sums.count }

    public init(layerCount: Int) {
        self.layerCount = layerCount
        sums = PositionSums(cells: (layerCount + 1) * (layerCount + 1))
    }

    /// d of one cosine.
    public static func distance(cosine: Double) -> Double { acos(min(max(cosine, -1), 1)) / Double.pi }

    /// Adds one position's d(l, n) for every block.
    public mutating func add(_ cosines: HiddenStateCosines) {
        let L = layerCount
        precondition(cosines.stateCount == L + 1, "cosines of \(cosines.stateCount) states for \(L) layers")
        for n in 1...L {
            for l in 0...(L - n) { sums.add(Self.distance(cosine: cosines.cosine(l, l + n)), at: n * (L + 1) + l) }
        }
        sums.countPosition()
    }

    /// Adds the positions another accumulator counted.
    public mutating func merge(_ other: AngularDistanceSums) {
        precondition(other.layerCount == layerCount, "merging sums of different layer counts")
        sums.merge(other.sums)
    }

    /// The sums and the count, flat (what MPI ranks exchange); `init(layerCount:flattened:)` reads it back.
    var flattened: [Double] { sums.flattened }

    init(layerCount: Int, flattened: ArraySlice<Double>) {
        self.layerCount = layerCount
        sums = PositionSums(cells: (layerCount + 1) * (layerCount + 1), flattened: flattened)
    }

    /// The mean d as an (L+1, L+1) matrix indexed [n][l]; nil for n = 0 and where l + n > L.
    public var matrix: [[Double?]] {
        let L = layerCount
        return (0...L).map { n in
            (0...L).map { l in n >= 1 && l + n <= L && count > 0 ? sums.values[n * (L + 1) + l] / Double(count) : nil }
        }
    }
}
