// cos(h_a, h_b) between every pair of the L+1 hidden states at one token position. The position's states
// form one (S, C) matrix P, so a single GEMM P·Pᵀ gives all dot products (its Gram matrix) and the norms
// on its diagonal. Cosines are then formed in Double.
// Dimension glossary: S = L+1 hidden states, C model dim.
import Foundation
import Tensor

/// Reusable buffers that turn one position's hidden states into their pairwise cosines.
public final class HiddenStateCosines {
    /// S = L+1
    public let stateCount: Int
    /// C
    public let width: Int
    private let gram: UnsafeMutablePointer<Float>     // (S, S)
    private var values: [Double]                      // (S, S), row-major

    /// Norms below this count as this (torch.nn.functional.cosine_similarity's eps), so a zero state
    /// gives cosine 0 rather than NaN.
    public static let normFloor = 1e-8

    public init(stateCount: Int, width: Int) {
        self.stateCount = stateCount
        self.width = width
        gram = .allocate(capacity: stateCount * stateCount)
        values = [Double](repeating: 0, count: stateCount * stateCount)
    }

    deinit { gram.deallocate() }

    /// Computes the cosines of one position's states `p` (S, C), row-major.
    public func compute(_ p: UnsafePointer<Float>) {
        let S = stateCount, C = width
        Gemm.multiply(transA: false, transB: true, m: S, n: S, k: C, a: p, lda: C, b: p, ldb: C, c: gram, ldc: S,
                      parallelism: .serial)  // one position per worker thread
        values.withUnsafeMutableBufferPointer { out in
            for a in 0..<S {
                let normA = max(Double(gram[a * S + a]).squareRoot(), Self.normFloor)
                for b in 0..<S {
                    let normB = max(Double(gram[b * S + b]).squareRoot(), Self.normFloor)
                    // Rounding can put |cos| a hair above 1, where arccos is undefined.
                    out[a * S + b] = min(max(Double(gram[a * S + b]) / (normA * normB), -1), 1)
                }
            }
        }
    }

    /// cos(h_a, h_b) of the last computed position.
    public func cosine(_ a: Int, _ b: Int) -> Double { values[a * stateCount + b] }
}
