// Finite-difference checks of every op's backward on small awkward shapes: T > 1, fewer kv heads than
// query heads, odd dimensions, RoPE at a position offset, LoRA ranks off the kernels' blocks of 8.
import Checkpoint
import Foundation
import Llama
import Tensor
import TestSupport
import Training
import XCTest

final class OpGradientTests: XCTestCase {
    func testEmbeddingScatterAddsRepeatedTokens() {
        let V = 7, C = 5
        let tokens: [Int32] = [3, 1, 3, 6, 0, 3]
        let n = tokens.count
        let table = GradientCheck.tensor([V, C], seed: 1)
        let w = GradientCheck.random(n * C, seed: 2)
        let out = Tensor(zeros: [n, C]), dTable = Tensor(zeros: [V, C])
        func loss() -> Double {
            Embedding.forward(tokens: tokens, count: n, table: Weight(table), into: out.data)
            return GradientCheck.dot(w, out.data)
        }
        _ = loss()
        w.withUnsafeBufferPointer { Embedding.backward(tokens: tokens, count: n, dX: $0.baseAddress!, dim: C, dTable: dTable.data) }
        XCTAssertEqual(dTable[3 * C], w[0] + w[2 * C] + w[5 * C], accuracy: 1e-6, "token 3 appears three times")
        GradientCheck.assertClose("dTable", parameter: table.data, count: table.count, analytic: dTable.data, loss: loss)
    }

    func testRMSNorm() {
        let n = 3, C = 7
        let x = GradientCheck.tensor([n, C], seed: 3, scale: 2), weight = GradientCheck.tensor([C], seed: 4)
        let w = GradientCheck.random(n * C, seed: 5)
        let y = Tensor(zeros: [n, C]), rstd = Tensor(zeros: [n])
        func loss() -> Double {
            RMSNorm.forward(x.data, weight: weight.data, into: y.data, rstd: rstd.data, rows: n, cols: C, eps: 1e-5)
            return GradientCheck.dot(w, y.data)
        }
        _ = loss()
        let dx = Tensor(zeros: [n, C]), dWeight = Tensor(shape: [C], repeating: 0.5)  // += onto a non-zero buffer
        w.withUnsafeBufferPointer {
            RMSNorm.backward(x.data, weight: weight.data, rstd: rstd.data, dy: $0.baseAddress!, dx: dx.data, dWeight: dWeight.data,
                             rows: n, cols: C)
        }
        for i in 0..<C { dWeight[i] -= 0.5 }
        GradientCheck.assertClose("dx", parameter: x.data, count: x.count, analytic: dx.data, loss: loss)
        GradientCheck.assertClose("dWeight", parameter: weight.data, count: C, analytic: dWeight.data, loss: loss)
    }

    func testRoPEAtAPositionOffset() {
        let H = 3, D = 6, n = 6
        let config = LlamaConfig(hiddenSize: H * D, intermediateSize: 4, numHiddenLayers: 1, numAttentionHeads: H, headDim: D,
                                 ropeTheta: 500, vocabSize: 4)
        let rope = RotaryEmbedding(config: config)
        rope.ensure(length: 16)
        let positions: [Int32] = [5, 6, 7, 9, 10, 11]   // two sequences continuing at offsets 5 and 9
        let x = GradientCheck.tensor([n, H * D], seed: 6)
        let w = GradientCheck.random(n * H * D, seed: 7)
        let y = Tensor(zeros: [n, H * D])
        func loss() -> Double {
            y.data.update(from: x.data, count: x.count)
            RoPE.forward(y.data, positions: positions, rope: rope, rows: n, heads: H)
            return GradientCheck.dot(w, y.data)
        }
        _ = loss()
        let dx = Tensor(shape: [n, H * D], values: w)
        RoPE.backward(dx.data, positions: positions, rope: rope, rows: n, heads: H)
        GradientCheck.assertClose("dx", parameter: x.data, count: x.count, analytic: dx.data, loss: loss)
    }

    func testGroupedQueryAttention() {
        checkAttention(batch: 2, queries: 5, keys: 5, firstQueryPosition: 0, heads: 4, kvHeads: 2, headDim: 3)
    }

    func testGroupedQueryAttentionAfterEarlierKeys() {
        checkAttention(batch: 2, queries: 3, keys: 7, firstQueryPosition: 4, heads: 6, kvHeads: 2, headDim: 5)
    }

    func testBlockwiseAttentionAcrossTileEdges() {
        // T = 7 is no multiple of the 3 × 2 tiles: partial tiles on both edges, key tiles half above the diagonal,
        // rows that see none of a tile's keys; three query heads share each kv head.
        checkAttention(batch: 2, queries: 7, keys: 7, firstQueryPosition: 0, heads: 6, kvHeads: 2, headDim: 5,
                       tiles: Attention.Tiles(queries: 3, keys: 2))
        // Key tiles wider than query tiles, queries after earlier keys (a KV cache's case).
        checkAttention(batch: 1, queries: 5, keys: 11, firstQueryPosition: 6, heads: 4, kvHeads: 2, headDim: 3,
                       tiles: Attention.Tiles(queries: 2, keys: 4))
    }

    private func checkAttention(batch b: Int, queries t: Int, keys s: Int, firstQueryPosition q0: Int,
                                heads H: Int, kvHeads G: Int, headDim D: Int, tiles: Attention.Tiles = .standard,
                                line: UInt = #line) {
        let q = GradientCheck.tensor([b * t, H * D], seed: 8), k = GradientCheck.tensor([b * s, G * D], seed: 9)
        let v = GradientCheck.tensor([b * s, G * D], seed: 10)
        let w = GradientCheck.random(b * t * H * D, seed: 11)
        let out = Tensor(zeros: [b * t, H * D]), lse = Tensor(zeros: [b, H, t])
        let scratch = Tensor(zeros: [Attention.scoreScratchCount(queries: t, keys: s, parallelism: .allCores, tiles: tiles)])
        func loss() -> Double {
            Attention.forward(q: q.data, keys: k.data, values: v.data, keyBatchStride: s * G * D, batch: b, queries: t,
                              keyCount: s, firstQueryPosition: q0, heads: H, kvHeads: G, headDim: D, scratch: scratch.data,
                              logSumExp: lse.data, out: out.data, parallelism: .allCores, tiles: tiles)
            return GradientCheck.dot(w, out.data)
        }
        _ = loss()
        let dq = Tensor(shape: q.shape, repeating: 9), dk = Tensor(shape: k.shape, repeating: 9), dv = Tensor(shape: v.shape, repeating: 9)
        let dOut = Tensor(shape: out.shape, values: w)
        Attention.backward(dOut: dOut.data, q: q.data, keys: k.data, values: v.data, out: out.data, logSumExp: lse.data,
                           keyBatchStride: s * G * D, batch: b, queries: t, keyCount: s, firstQueryPosition: q0,
                           heads: H, kvHeads: G, headDim: D, scratch: scratch.data, dq: dq.data, dKeys: dk.data, dValues: dv.data,
                           parallelism: .allCores, tiles: tiles)
        GradientCheck.assertClose("dq", parameter: q.data, count: q.count, analytic: dq.data, loss: loss, line: line)
        GradientCheck.assertClose("dk", parameter: k.data, count: k.count, analytic: dk.data, loss: loss, line: line)
        GradientCheck.assertClose("dv", parameter: v.data, count: v.count, analytic: dv.data, loss: loss, line: line)
    }

    func testSwiGLU() {
        let n = 11
        let g = GradientCheck.tensor([n], seed: 12, scale: 4), u = GradientCheck.tensor([n], seed: 13, scale: 2)
        let w = GradientCheck.random(n, seed: 14)
        let h = Tensor(zeros: [n])
        func loss() -> Double {
            SwiGLU.forward(gate: g.data, up: u.data, into: h.data, count: n)
            return GradientCheck.dot(w, h.data)
        }
        _ = loss()
        let dg = Tensor(zeros: [n]), du = Tensor(zeros: [n]), dh = Tensor(shape: [n], values: w)
        SwiGLU.backward(gate: g.data, up: u.data, dh: dh.data, dGate: dg.data, dUp: du.data, count: n)
        GradientCheck.assertClose("dGate", parameter: g.data, count: n, analytic: dg.data, loss: loss)
        GradientCheck.assertClose("dUp", parameter: u.data, count: n, analytic: du.data, loss: loss)
    }

    func testSwiGLUOnVectorBlocks() {
        // 8-lane body plus a tail, against the scalar kernel.
        let n = 37
        let g = GradientCheck.tensor([n], seed: 15, scale: 6), u = GradientCheck.tensor([n], seed: 16), dh = GradientCheck.tensor([n], seed: 17)
        let dg = Tensor(zeros: [n]), du = Tensor(zeros: [n]), dgRef = Tensor(zeros: [n]), duRef = Tensor(zeros: [n])
        SwiGLU.backward(gate: g.data, up: u.data, dh: dh.data, dGate: dg.data, dUp: du.data, count: n)
        Kernels.siluMulBackward(g.data, u.data, dh: dh.data, dg: dgRef.data, du: duRef.data, count: n)
        assertPinned("kernel.swiglu", Double(dg.maxAbsDifference(dgRef)), within: Tolerance.swiGLUBackward, "dGate vs scalar")
        assertPinned("kernel.swiglu", Double(du.maxAbsDifference(duRef)), within: Tolerance.swiGLUBackward, "dUp vs scalar")
    }

    func testFrozenLinearGivesTheInputGradientOnly() {
        let n = 3, I = 5, O = 7
        let linear = Linear(weight: GradientCheck.tensor([O, I], seed: 18), bias: GradientCheck.tensor([O], seed: 19))
        let x = GradientCheck.tensor([n, I], seed: 20), w = GradientCheck.random(n * O, seed: 21), y = Tensor(zeros: [n, O])
        func loss() -> Double {
            linear.forward(x.data, rows: n, into: y.data, parallelism: .allCores)
            return GradientCheck.dot(w, y.data)
        }
        _ = loss()
        let dy = Tensor(shape: [n, O], values: w), dx = Tensor(shape: [n, I], repeating: 1)
        linear.backward(x.data, rows: n, dy: dy.data, dx: dx.data, accumulate: true, parallelism: .allCores)   // adds onto the ones
        for i in 0..<dx.count { dx[i] -= 1 }
        XCTAssertNil(linear.dWeight)
        XCTAssertNil(linear.dBias)
        GradientCheck.assertClose("dx", parameter: x.data, count: x.count, analytic: dx.data, loss: loss)
    }

    func testFullLinear() {
        let n = 4, I = 9, O = 5
        let linear = Linear(weight: GradientCheck.tensor([O, I], seed: 22), bias: GradientCheck.tensor([O], seed: 23))
        linear.dWeight = Tensor(zeros: [O, I])
        linear.dBias = Tensor(zeros: [O])
        let x = GradientCheck.tensor([n, I], seed: 24), w = GradientCheck.random(n * O, seed: 25), y = Tensor(zeros: [n, O])
        func loss() -> Double {
            linear.forward(x.data, rows: n, into: y.data, parallelism: .allCores)
            return GradientCheck.dot(w, y.data)
        }
        _ = loss()
        let dy = Tensor(shape: [n, O], values: w), dx = Tensor(zeros: [n, I])
        linear.backward(x.data, rows: n, dy: dy.data, dx: dx.data, parallelism: .allCores)
        GradientCheck.assertClose("dx", parameter: x.data, count: x.count, analytic: dx.data, loss: loss)
        GradientCheck.assertClose("dWeight", parameter: linear.weight.float32!.data, count: O * I, analytic: linear.dWeight!.data, loss: loss)
        GradientCheck.assertClose("dBias", parameter: linear.bias!.data, count: O, analytic: linear.dBias!.data, loss: loss)
    }

    func testLoRALinearRank3() { checkLoRA(rows: 13, inFeatures: 9, outFeatures: 11, rank: 3, keepHidden: true) }

    func testLoRALinearRank10WithoutKeptHidden() {
        // One block of 8 plus a remainder of 2; the hidden x·Aᵀ is recomputed by backward.
        checkLoRA(rows: 5, inFeatures: 19, outFeatures: 17, rank: 10, keepHidden: false)
    }

    func testLoRALinearWithDropoutBothWays() {
        // The mask comes back from its key in backward (kept hidden or recomputed).
        checkLoRA(rows: 6, inFeatures: 19, outFeatures: 9, rank: 8, keepHidden: true, dropout: 0.3)
        checkLoRA(rows: 6, inFeatures: 19, outFeatures: 9, rank: 3, keepHidden: false, dropout: 0.3)
    }

    func testDropoutZeroesAboutPAndScalesTheRest() {
        let n = 100_000
        let x = [Float](repeating: 1, count: n)
        var y = [Float](repeating: 0, count: n), again = y
        Kernels.dropout(x, into: &y, count: n, key: 42, p: 0.25)
        Kernels.dropout(x, into: &again, count: n, key: 42, p: 0.25)
        assertEqualElements(y, again, "the same key gives the same mask")
        let dropped = y.filter { $0 == 0 }.count
        XCTAssertEqual(Double(dropped) / Double(n), 0.25, accuracy: 0.005)
        XCTAssertTrue(y.allSatisfy { $0 == 0 || abs($0 - 4.0 / 3.0) < 1e-6 })
        Kernels.dropout(x, into: &again, count: n, key: 43, p: 0.25)
        XCTAssertTrue(y != again, "another key, another mask")   // not XCTAssertNotEqual: it would print 2 × 100 000 numbers
    }

    func testADropoutSliceDrawsTheWholeTensorsMaskThere() {
        // Data parallelism: rank r's rows of a batch get the masks one process draws for those rows.
        let x = (0..<1000).map { Float($0 % 7) + 1 }
        var whole = [Float](repeating: 0, count: 1000), part = [Float](repeating: 0, count: 400)
        Kernels.dropout(x, into: &whole, count: 1000, key: 9, p: 0.5)
        Array(x[600..<1000]).withUnsafeBufferPointer { Kernels.dropout($0.baseAddress!, into: &part, count: 400, first: 600, key: 9, p: 0.5) }
        assertEqualElements(part, Array(whole[600..<1000]))
    }

    private func checkLoRA(rows n: Int, inFeatures I: Int, outFeatures O: Int, rank R: Int, keepHidden: Bool,
                           dropout: Float = 0, line: UInt = #line) {
        let linear = Linear(weight: GradientCheck.tensor([O, I], seed: 26))
        let adapter = LoRAAdapter(a: GradientCheck.tensor([R, I], seed: 27), b: GradientCheck.tensor([O, R], seed: 28), alpha: 5)
        adapter.dA = Tensor(zeros: [R, I])
        adapter.dB = Tensor(zeros: [O, R])
        adapter.dropout = dropout
        linear.lora = adapter
        let key: UInt64? = dropout > 0 ? 1234 : nil
        let x = GradientCheck.tensor([n, I], seed: 29), w = GradientCheck.random(n * O, seed: 30)
        let y = Tensor(zeros: [n, O]), hidden = Tensor(zeros: [n, R])
        func loss() -> Double {
            linear.forward(x.data, rows: n, into: y.data, loraHidden: hidden.data, dropoutKey: key, parallelism: .allCores)
            return GradientCheck.dot(w, y.data)
        }
        _ = loss()
        let dy = Tensor(shape: [n, O], values: w), dx = Tensor(zeros: [n, I])
        linear.backward(x.data, rows: n, dy: dy.data, dx: dx.data, loraHidden: keepHidden ? UnsafePointer(hidden.data) : nil,
                        dropoutKey: key, parallelism: .allCores)
        XCTAssertNil(linear.dWeight, line: line)
        GradientCheck.assertClose("dx", parameter: x.data, count: x.count, analytic: dx.data, loss: loss, line: line)
        GradientCheck.assertClose("dA", parameter: adapter.a.data, count: R * I, analytic: adapter.dA!.data, loss: loss, line: line)
        GradientCheck.assertClose("dB", parameter: adapter.b.data, count: O * R, analytic: adapter.dB!.data, loss: loss, line: line)
    }

    func testResidualAroundABranch() {
        // out = x + x·Wᵀ: the skip and the branch both carry the gradient back to x.
        let n = 3, C = 5
        let linear = Linear(weight: GradientCheck.tensor([C, C], seed: 31))
        let x = GradientCheck.tensor([n, C], seed: 32), w = GradientCheck.random(n * C, seed: 33)
        let branch = Tensor(zeros: [n, C]), out = Tensor(zeros: [n, C])
        func loss() -> Double {
            linear.forward(x.data, rows: n, into: branch.data, parallelism: .allCores)
            Residual.forward(skip: x.data, branch: branch.data, into: out.data, count: n * C)
            return GradientCheck.dot(w, out.data)
        }
        _ = loss()
        let dStream = Tensor(shape: [n, C], values: w), dBranchInput = Tensor(zeros: [n, C])
        linear.backward(x.data, rows: n, dy: dStream.data, dx: dBranchInput.data, parallelism: .allCores)
        Residual.backward(branchInputGradient: dBranchInput.data, into: dStream.data, count: n * C)
        GradientCheck.assertClose("dx", parameter: x.data, count: x.count, analytic: dStream.data, loss: loss)
    }

    func testHeadAndCrossEntropyWithIgnoredPositions() {
        let n = 7, C = 5, V = 11
        let targets: [Int32] = [3, -100, 10, 0, -100, 7, 3]
        let head = LMHeadLoss(vocab: V, dim: C, chunkRows: 2, parallelism: .allCores)   // several chunks, one of them partial
        let x = GradientCheck.tensor([n, C], seed: 34, scale: 2), weight = GradientCheck.tensor([V, C], seed: 35)
        func loss() -> Double {
            head.forwardBackward(x.data, rows: n, weight: Weight(weight), targets: targets, dX: nil, dWeight: nil).mean
        }
        let dx = Tensor(shape: [n, C], repeating: 7), dWeight = Tensor(zeros: [V, C])
        let tally = head.forwardBackward(x.data, rows: n, weight: Weight(weight), targets: targets, dX: dx.data, dWeight: dWeight.data)
        XCTAssertEqual(tally.count, 5)
        // Same loss as the inference path's tally over full logits.
        let logits = Tensor(zeros: [n, V])
        Gemm.linear(x.data, rows: n, inFeatures: C, weight: weight.data, outFeatures: V, into: logits.data, parallelism: .allCores)
        XCTAssertEqual(tally.mean, NextTokenLoss.tally(logits: logits, targets: targets, vocab: V).mean, accuracy: 1e-6)
        for c in 0..<C { XCTAssertEqual(dx[1 * C + c], 0, "ignored row gets no gradient") }
        GradientCheck.assertClose("dX", parameter: x.data, count: x.count, analytic: dx.data, epsilon: 1e-2, loss: loss)
        GradientCheck.assertClose("dWeight", parameter: weight.data, count: weight.count, analytic: dWeight.data, epsilon: 1e-2, loss: loss)
    }

    func testCrossEntropyKernelMatchesTheScalarOne() {
        let V = 1003
        let logits = GradientCheck.tensor([V], seed: 36, scale: 8)
        let d = Tensor(zeros: [V]), dRef = Tensor(zeros: [V])
        let loss = Kernels.crossEntropyVectorized(logits.data, vocab: V, target: 17, dLogits: d.data, gradScale: 0.25)
        let ref = Kernels.crossEntropy(logits.data, vocab: V, target: 17, dLogits: dRef.data, gradScale: 0.25)
        assertPinned("kernel.crossentropy", Double(abs(loss - ref)), within: Tolerance.crossEntropyLoss, "loss vs scalar")
        assertPinned("kernel.crossentropy", Double(d.maxAbsDifference(dRef)), within: Tolerance.crossEntropyGradient, "gradient vs scalar")
        // In place: the logits row becomes its gradient.
        let inPlace = logits.copy()
        let loss2 = Kernels.crossEntropyVectorized(inPlace.data, vocab: V, target: 17, dLogits: inPlace.data, gradScale: 0.25)
        XCTAssertEqual(loss2, loss)
        XCTAssertEqual(inPlace.maxAbsDifference(d), 0)
    }
}
