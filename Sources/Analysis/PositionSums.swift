// The part of a per-position accumulator that merges: one running sum per cell, in Double, and how many token
// positions went into them. Ranks under MPI exchange it flat (the sums, then the count).

/// Running sums over token positions and their count.
struct PositionSums: Sendable {
    private(set) var values: [Double]
    private(set) var count = 0

    init(cells: Int) {
        values = [Double](repeating: 0, count: cells)
    }

    /// Reads back `flattened` of sums with `cells` cells.
    init(cells: Int, flattened: ArraySlice<Double>) {
        precondition(flattened.count == cells + 1, "\(flattened.count) values for \(cells + 1)")
        values = Array(flattened.dropLast())
        count = Int(flattened.last ?? 0)
    }

    /// Adds x to cell i (one position's value; `countPosition` closes the position).
    mutating func add(_ x: Double, at i: Int) { values[i] += x }

    /// One more position went into the sums.
    mutating func countPosition() { count += 1 }

    /// Adds the positions another accumulator counted.
    mutating func merge(_ other: PositionSums) {
        precondition(other.values.count == values.count, "merging sums of different sizes")
        for i in values.indices { values[i] += other.values[i] }
        count += other.count
    }

    /// The sums and the count, flat.
    var flattened: [Double] { values + [Double(count)] }
}
