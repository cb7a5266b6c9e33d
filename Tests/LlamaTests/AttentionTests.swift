// The blockwise attention forward against a plain softmax attention computed in Double: the output and the kept
// log-sum-exp, across tile edges, with grouped kv heads, after earlier keys (a KV cache) and for one decoded token.
// Dimension glossary: B batch, T queries, S keys, H query heads, G kv heads, D head dim.
import Foundation
import Llama
import Support
import Tensor
import TestSupport
import XCTest

final class AttentionTests: XCTestCase {
    func testBlockwiseForwardMatchesPlainSoftmaxAttention() {
        // T = 200 leaves partial 64-row and 128-key tiles; scores up to ~±12 so that the running max moves.
        check(batch: 2, queries: 200, keys: 200, firstQueryPosition: 0, heads: 6, kvHeads: 2, headDim: 16)
        check(batch: 1, queries: 37, keys: 237, firstQueryPosition: 200, heads: 4, kvHeads: 1, headDim: 8)
        check(batch: 2, queries: 1, keys: 300, firstQueryPosition: 299, heads: 3, kvHeads: 3, headDim: 8)
        check(batch: 1, queries: 23, keys: 23, firstQueryPosition: 0, heads: 4, kvHeads: 2, headDim: 7,
              tiles: Attention.Tiles(queries: 5, keys: 3))
        check(batch: 1, queries: 9, keys: 20, firstQueryPosition: 11, heads: 2, kvHeads: 1, headDim: 5,
              tiles: Attention.Tiles(queries: 4, keys: 6))
    }

    private func check(batch b: Int, queries t: Int, keys s: Int, firstQueryPosition q0: Int, heads H: Int, kvHeads G: Int,
                       headDim D: Int, tiles: Attention.Tiles = .standard, line: UInt = #line) {
        var rng = SeededGenerator(seed: UInt64(t * 1000 + s))
        func random(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in Float.random(in: -scale..<scale, using: &rng) } }
        let q = random(b * t * H * D, 3), k = random(b * s * G * D, 3), v = random(b * s * G * D, 1)
        let out = Tensor(zeros: [b * t, H * D]), lse = Tensor(zeros: [b, H, t])
        let scratch = Tensor(zeros: [Attention.scoreScratchCount(queries: t, keys: s, parallelism: .allCores, tiles: tiles)])
        Attention.forward(q: q, keys: k, values: v, keyBatchStride: s * G * D, batch: b, queries: t, keyCount: s,
                          firstQueryPosition: q0, heads: H, kvHeads: G, headDim: D, scratch: scratch.data, logSumExp: lse.data,
                          out: out.data, parallelism: .allCores, tiles: tiles)
        // Softmax attention in Double: each query's output (B·T, H·D) and log-sum-exp (B, H, T).
        var expected = [Double](repeating: 0, count: b * t * H * D), expectedLSE = [Double](repeating: 0, count: b * H * t)
        let scale = 1 / Double(D).squareRoot()
        for bi in 0..<b {
            for h in 0..<H {
                let g = h / (H / G)
                for i in 0..<t {
                    let visible = min(s, q0 + i + 1)
                    let scores = (0..<visible).map { j in
                        (0..<D).reduce(0.0) { $0 + Double(q[(bi * t + i) * H * D + h * D + $1]) * Double(k[(bi * s + j) * G * D + g * D + $1]) } * scale
                    }
                    let mx = scores.max() ?? 0
                    let z = scores.reduce(0.0) { $0 + exp($1 - mx) }
                    expectedLSE[(bi * H + h) * t + i] = mx + log(z)
                    for d in 0..<D {
                        expected[(bi * t + i) * H * D + h * D + d] =
                            (0..<visible).reduce(0.0) { $0 + exp(scores[$1] - mx) / z * Double(v[(bi * s + $1) * G * D + g * D + d]) }
                    }
                }
            }
        }
        let outScale = expected.map(abs).max() ?? 0
        /// max |Δ| of a computed output against the Double one.
        func error(_ o: Tensor) -> Double { expected.indices.map { abs(Double(o[$0]) - expected[$0]) }.max() ?? 0 }
        let outError = error(out)
        let lseError = expectedLSE.indices.map { abs(Double(lse[$0]) - expectedLSE[$0]) / max(1, abs(expectedLSE[$0])) }.max() ?? 0
        let shape = "T=\(t) S=\(s) q0=\(q0) H=\(H) G=\(G) D=\(D) tiles \(tiles.queries)×\(tiles.keys)"
        assertPinned("attention.forward", outError / outScale, within: Tolerance.attentionOutput, "out, \(shape)", line: line)
        assertPinned("attention.forward", lseError, within: Tolerance.attentionLogSumExp, "log-sum-exp, \(shape)", line: line)
        // Heads are independent: one thread or several give the same bits. Inference (no log-sum-exp) gives the same
        // output, except up to 16 queries (decoding), which go query by query: within the same bound of the reference.
        let inference = Tensor(zeros: out.shape), serial = Tensor(zeros: out.shape)
        for (p, o) in [(Parallelism.allCores, inference), (.serial, serial)] {
            Attention.forward(q: q, keys: k, values: v, keyBatchStride: s * G * D, batch: b, queries: t, keyCount: s,
                              firstQueryPosition: q0, heads: H, kvHeads: G, headDim: D, scratch: scratch.data, logSumExp: nil,
                              out: o.data, parallelism: p, tiles: tiles)
        }
        XCTAssertEqual(Double(serial.maxAbsDifference(inference)), Tolerance.exact, "serial and parallel inference: \(shape)", line: line)
        if t > MatrixVector.maxRows {
            XCTAssertEqual(Double(serial.maxAbsDifference(out)), Tolerance.exact, "inference and training forward: \(shape)", line: line)
        } else {
            assertPinned("kernel.attention_query", error(serial) / outScale, within: Tolerance.attentionQuery, "query by query, \(shape)", line: line)
        }
    }
}
