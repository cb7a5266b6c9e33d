// Least squares min_T ‖A·T − B‖² over as many rows as calibration gives, in Float64: rows of A and B (N, C),
// Float32 as a model computes them, are widened and folded batch by batch into AᵀA and AᵀB, so any number of
// rows needs two (C, C) matrices; T = (AᵀA)⁻¹ AᵀB comes from a Cholesky factorization of AᵀA. The squared error
// of any T follows from the same sums (tr(TᵀAᵀAT) − 2 tr(TᵀAᵀB) + ‖B‖²), so a candidate is judged without the rows.
// Dimension glossary: N rows, C width.

/// The normal equations of one least-squares problem with C columns in A and in B.
public struct NormalEquations: Sendable {
    /// C
    public let width: Int
    /// AᵀA (C, C), row-major.
    public private(set) var gram: [Double]
    /// AᵀB (C, C), row-major.
    public private(set) var cross: [Double]
    /// ‖B‖² (squared Frobenius norm).
    public private(set) var targetSquares = 0.0
    /// Rows folded in so far.
    public private(set) var rows = 0

    public init(width: Int) {
        precondition(width >= 1, "least squares needs at least one column")
        self.width = width
        gram = [Double](repeating: 0, count: width * width)
        cross = gram
    }

    /// Folds in the rows `selected` of a and b (each (·, C), row-major): widened to Float64, then AᵀA and AᵀB
    /// grow by one Float64 product each (OpenBLAS's dgemm).
    public mutating func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, rows selected: [Int]) {
        guard !selected.isEmpty else { return }
        let c = width, n = selected.count
        var wideA = [Double](repeating: 0, count: n * c), wideB = wideA
        for (k, row) in selected.enumerated() {
            for i in 0..<c {
                let y = Double(b[row * c + i])
                wideA[k * c + i] = Double(a[row * c + i])
                wideB[k * c + i] = y
                targetSquares += y * y
            }
        }
        _ = Gemm.blas
        BLASRuntime.dgemm(true, false, c, c, n, 1, wideA, c, wideA, c, 1, &gram, c)
        BLASRuntime.dgemm(true, false, c, c, n, 1, wideA, c, wideB, c, 1, &cross, c)
        rows += n
    }

    /// T = (AᵀA)⁻¹ AᵀB (C, C), row-major; nil when AᵀA is not positive definite (fewer independent rows than
    /// columns, or a column that is always zero).
    public func solve() -> [Double]? {
        let c = width
        guard let l = Self.cholesky(gram, width: c) else { return nil }
        var t = cross
        // Solve L·Lᵀ·T = AᵀB column block by column block: forward substitution, then backward.
        for i in 0..<c {
            for k in 0..<i {
                let f = l[i * c + k]
                if f != 0 { for j in 0..<c { t[i * c + j] -= f * t[k * c + j] } }
            }
            let d = l[i * c + i]
            for j in 0..<c { t[i * c + j] /= d }
        }
        for i in stride(from: c - 1, through: 0, by: -1) {
            for k in (i + 1)..<c {
                let f = l[k * c + i]
                if f != 0 { for j in 0..<c { t[i * c + j] -= f * t[k * c + j] } }
            }
            let d = l[i * c + i]
            for j in 0..<c { t[i * c + j] /= d }
        }
        return t
    }

    /// The lower-triangular L with L·Lᵀ = g, or nil when g is not (numerically) positive definite.
    static func cholesky(_ g: [Double], width c: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: c * c)
        let scale = (0..<c).map { g[$0 * c + $0] }.max() ?? 0
        guard scale > 0 else { return nil }
        for j in 0..<c {
            var d = g[j * c + j]
            for k in 0..<j { d -= l[j * c + k] * l[j * c + k] }
            // A pivot lost to rounding against the largest diagonal is a rank-deficient Gram matrix.
            guard d > scale * 1e-13 else { return nil }
            let root = d.squareRoot()
            l[j * c + j] = root
            for i in (j + 1)..<c {
                var s = g[i * c + j]
                for k in 0..<j { s -= l[i * c + k] * l[j * c + k] }
                l[i * c + j] = s / root
            }
        }
        return l
    }

    /// ‖A·T − B‖² for any T (C, C), from the accumulated sums.
    public func squaredError(_ t: [Double]) -> Double {
        let c = width
        var quadratic = 0.0, linear = 0.0
        // tr(Tᵀ G T) = Σ_{i,j} (G T)[i][j] · T[i][j]; tr(Tᵀ X) = Σ T[i][j] · X[i][j].
        var gt = [Double](repeating: 0, count: c)
        for i in 0..<c {
            for j in 0..<c { gt[j] = 0 }
            for k in 0..<c {
                let g = gram[i * c + k]
                if g != 0 { for j in 0..<c { gt[j] += g * t[k * c + j] } }
            }
            for j in 0..<c {
                quadratic += gt[j] * t[i * c + j]
                linear += t[i * c + j] * cross[i * c + j]
            }
        }
        return max(0, quadratic - 2 * linear + targetSquares)
    }

    /// ‖A − B‖² (T = I), from the accumulated sums.
    public var identityError: Double {
        let c = width
        return max(0, (0..<c).reduce(0.0) { $0 + gram[$1 * c + $1] - 2 * cross[$1 * c + $1] } + targetSquares)
    }
}
