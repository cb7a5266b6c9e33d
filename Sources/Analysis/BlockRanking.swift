// Which block of n consecutive layers to cut: the start l with the smallest angular distance d(l, n),
// and the runner-up to show how clear the choice is.
// Dimension glossary: L layers; d is (L+1, L+1) indexed [n][l].

/// A block of consecutive layers and its angular distance.
public struct RankedBlock: Codable, Equatable, Sendable {
    /// First layer, l.
    public var start: Int
    /// The layers the block covers, l…l+n−1 (what a cut drops).
    public var layers: [Int]
    /// d(l, n)
    public var distance: Double

    public init(start: Int, size: Int, distance: Double) {
        self.start = start
        layers = Array(start..<(start + size))
        self.distance = distance
    }
}

/// The best block of one size and the second best.
public struct BlockChoice: Codable, Equatable, Sendable {
    public var start: Int
    public var layers: [Int]
    public var distance: Double
    /// The next smallest distance of the same size; nil when only one block of that size exists.
    public var secondBest: RankedBlock?

    enum CodingKeys: String, CodingKey {
        case start, layers, distance, secondBest = "second_best"
    }

    public init(best: RankedBlock, secondBest: RankedBlock?) {
        start = best.start
        layers = best.layers
        distance = best.distance
        self.secondBest = secondBest
    }

    /// The best block alone.
    public var block: RankedBlock { RankedBlock(start: start, size: layers.count, distance: distance) }
}

/// Best blocks from an angular-distance matrix.
public enum BlockRanking {
    /// Blocks of size n ordered by distance (the smallest start first among equals, as numpy's argmin).
    public static func ranked(_ d: [[Double?]], size n: Int) -> [RankedBlock] {
        guard n >= 1, n < d.count else { return [] }
        let blocks = d[n].enumerated().compactMap { l, value in value.map { RankedBlock(start: l, size: n, distance: $0) } }
        return blocks.sorted { ($0.distance, $0.start) < ($1.distance, $1.start) }
    }

    /// The best and second-best block of each size in `sizes`, keyed by the size written out ("1", "2", …)
    /// as JSON object keys must be strings. Sizes without any defined block are left out.
    public static func best(_ d: [[Double?]], sizes: [Int]) -> [String: BlockChoice] {
        var out: [String: BlockChoice] = [:]
        for n in sizes {
            let ranked = ranked(d, size: n)
            guard let first = ranked.first else { continue }
            out[String(n)] = BlockChoice(best: first, secondBest: ranked.count > 1 ? ranked[1] : nil)
        }
        return out
    }
}
