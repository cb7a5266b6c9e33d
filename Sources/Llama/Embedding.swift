// Token embedding as a forward/backward pair: a row gather and its scatter-add.
// Dimension glossary: N rows (B·T), V vocab, C model dim.
import Tensor

/// Looks token ids up in a (V, C) table.
public enum Embedding {
    /// x (N, C) = table rows at `tokens` (N ids), widened to Float32 when the table is stored in 16 bits. The
    /// backward pass needs only the ids, which the caller keeps.
    public static func forward(tokens: UnsafePointer<Int32>, count n: Int, table: Weight, into x: UnsafeMutablePointer<Float>) {
        let vocab = table.rows, C = table.columns
        for r in 0..<n {
            let id = Int(tokens[r])
            precondition(id >= 0 && id < vocab, "token id \(id) outside the vocabulary (\(vocab))")
            table.widenRows(id, count: 1, into: x + r * C)
        }
    }

    /// dTable (V, C) += dX (N, C) scattered to the rows of `tokens`; a token seen twice gets both rows.
    public static func backward(tokens: UnsafePointer<Int32>, count n: Int, dX: UnsafePointer<Float>, dim C: Int,
                                dTable: UnsafeMutablePointer<Float>) {
        for r in 0..<n {
            Kernels.add(dX + r * C, into: dTable + Int(tokens[r]) * C, count: C)
        }
    }
}
