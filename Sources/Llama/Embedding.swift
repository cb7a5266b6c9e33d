// Token embedding as a forward/backward pair: a row gather and its scatter-add.
// Dimension glossary: N rows (B·T), V vocab, C model dim.
import Tensor

/// Looks token ids up in a (V, C) table.
public enum Embedding {
    /// x (N, C) = table rows at `tokens` (N ids). The backward pass needs only the ids, which the caller keeps.
    public static func forward(tokens: UnsafePointer<Int32>, count n: Int, table: UnsafePointer<Float>, vocab: Int, dim C: Int,
                               into x: UnsafeMutablePointer<Float>) {
        for r in 0..<n {
            let id = Int(tokens[r])
            precondition(id >= 0 && id < vocab, "token id \(id) outside the vocabulary (\(vocab))")
            (x + r * C).update(from: table + id * C, count: C)
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
