// What the pieces of batch-1 decoding cost on this machine, measured with the decoding kernels themselves: one
// layer over m = 1…M rows (a step, or a verification pass of m rows), the lm_head's argmax over m rows, and a
// reduced draft head. Timed at a realistic cache length (its entries are left as zeros: the values do not change
// the work), warmed once, the fastest of a few repeats, so that a choice between speculation settings rests on
// what this CPU, its kernels and its threads do rather than on a formula.
// Dimension glossary: M most rows, L layers, C model dim.
import Foundation
import Llama
import Tensor

/// Measured seconds of decoding's pieces for one model.
public struct DecodeCost: Sendable {
    /// Index m−1: seconds for one layer over m rows (averaged over all L layers).
    public var layer: [Double]
    /// Index m−1: seconds for the final norm + lm_head argmax over m rows.
    public var head: [Double]
    /// Seconds for the draft's head over one row (the full head when there is no reduced one).
    public var draftHead: Double

    public init(layer: [Double], head: [Double], draftHead: Double) {
        precondition(!layer.isEmpty && layer.count == head.count, "costs for 1…M rows")
        self.layer = layer
        self.head = head
        self.draftHead = draftHead
    }

    /// Seconds of one plain decoding step of an L-layer model.
    public func step(layers L: Int) -> Double { Double(L) * layer[0] + head[0] }

    /// Measures `model` for 1…`rows` rows with `cachedPositions` positions already cached, `draftHead` (nil: the
    /// full head) scoring the draft.
    public static func measure(_ model: LlamaModel, rows: Int, cachedPositions: Int = 128, draftHead: Weight? = nil,
                               repeats: Int = 3) -> DecodeCost {
        let L = model.layers.count, C = model.config.hiddenSize
        let p = max(0, min(cachedPositions, model.config.maxPositionEmbeddings - rows))
        let session = DecodeSession(model: model, capacity: p + rows, rows: rows)
        let input = (0..<(rows * C)).map { Float(sin(Double($0) * 0.37)) }   // not all zero: a real norm and softmax
        let x = Tensor(zeros: [rows, C])
        func fastest(_ body: () -> Void) -> Double {
            body()
            var best = Double.infinity
            for _ in 0..<max(1, repeats) {
                let start = DispatchTime.now().uptimeNanoseconds
                body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
            }
            return best
        }
        var layer: [Double] = [], head: [Double] = []
        for m in 1...rows {
            layer.append(fastest {
                for l in 0..<L {
                    session.cache.truncate(layer: l, to: 0)
                    session.cache.advance(layer: l, by: p)
                }
                input.withUnsafeBufferPointer { x.data.update(from: $0.baseAddress!, count: m * C) }
                session.run(0..<L, on: x.data, rows: m, at: p)
            } / Double(L))
            input.withUnsafeBufferPointer { x.data.update(from: $0.baseAddress!, count: m * C) }
            head.append(fastest { _ = session.argmax(of: x.data, rows: m) })
        }
        let draft = draftHead.map { h in fastest { _ = session.argmax(of: x.data, rows: 1, head: h) } } ?? head[0]
        return DecodeCost(layer: layer, head: head, draftHead: draft)
    }
}
