// A projection y = x·Wᵀ (+ bias) (+ LoRA), weights stored (out, in) as PyTorch does, as a forward/backward
// pair. One backward serves the three ways a projection trains: frozen (gradient to the input only), LoRA
// (gradients to A, B and the input) and full (weight and bias gradients too, for partial finetuning).
// Dimension glossary: N rows (B·T), I in features, O out features, R LoRA rank.
import Tensor

/// A linear layer with an optional bias and an optional LoRA adapter.
public final class Linear {
    /// Float32, or 16-bit as the checkpoint stores it (frozen); replaced only by a same-shaped Float32 view when
    /// training puts it into a flat parameter buffer.
    public internal(set) var weight: Weight       // (O, I)
    public internal(set) var bias: Tensor?        // (O)
    public var lora: LoRAAdapter?
    /// Gradients of weight and bias, allocated only when the layer trains in full.
    public var dWeight: Tensor?     // (O, I)
    public var dBias: Tensor?       // (O)

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public init(weight: Weight, bias: Tensor? = nil) {
        precondition(weight.shape.count == 2, "Linear weight must be 2-D, got \(weight.shape)")
        self.weight = weight
        self.bias = bias
    }

    /// A Float32 linear layer.
    public convenience init(weight: Tensor, bias: Tensor? = nil) {
        self.init(weight: Weight(weight), bias: bias)
    }

    /// Whether any of this projection's parameters has a gradient buffer.
    public var isTrainable: Bool { dWeight != nil || dBias != nil || lora?.dA != nil || lora?.dB != nil }

    /// y (N, O) = x (N, I)·Wᵀ + bias + scale·(x·Aᵀ)·Bᵀ. `loraHidden` (N, R) receives x·Aᵀ when given
    /// (the backward pass needs it); otherwise a temporary is used.
    /// The backward pass also reads x (for dWeight and dA): the caller keeps it.
    /// With a `profile`, the GEMM's FLOPs go to the part being measured and the adapter's work to LoRA's.
    public func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>,
                        loraHidden: UnsafeMutablePointer<Float>? = nil, dropoutKey: UInt64? = nil,
                        parallelism: Parallelism, profile: StepProfile? = nil) {
        Gemm.linear(x, rows: n, weight: weight, into: y, parallelism: parallelism)
        profile.addFLOPs(2 * Double(n * outFeatures * inFeatures))
        addBias(to: y, rows: n)
        if let lora {
            profile.measure(.lora(.forward), flops: lora.forwardFLOPs(rows: n)) {
                Self.loraForward(lora, x, rows: n, into: y, loraHidden: loraHidden, dropoutKey: dropoutKey, parallelism: parallelism)
            }
        }
    }

    /// y (N, O) += bias per row, when there is one.
    func addBias(to y: UnsafeMutablePointer<Float>, rows n: Int) {
        guard let bias else { return }
        for r in 0..<n { Kernels.add(bias.data, into: y + r * outFeatures, count: outFeatures) }
    }

    private static func loraForward(_ lora: LoRAAdapter, _ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>,
                                    loraHidden: UnsafeMutablePointer<Float>?, dropoutKey: UInt64?, parallelism: Parallelism) {
        if let loraHidden {
            lora.forward(x, rows: n, hidden: loraHidden, into: y, dropoutKey: dropoutKey, parallelism: parallelism)
        } else {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: n * lora.rank) { h in
                lora.forward(x, rows: n, hidden: h.baseAddress!, into: y, dropoutKey: dropoutKey, parallelism: parallelism)
            }
        }
    }

    /// Backward of `forward` from dy (N, O):
    /// - dx (N, I) = dy·W (+ the LoRA term); `accumulate` adds into dx instead (projections sharing an input).
    ///   Pass nil when nothing below needs the input gradient.
    /// - dWeight (O, I) += dyᵀ·x and dBias (O) += Σ rows of dy, when allocated.
    /// - the adapter's dA, dB (+=) when allocated; `loraHidden` is the x·Aᵀ the forward pass kept (recomputed
    ///   when nil).
    /// With a `profile`, the base GEMMs' FLOPs go to the part being measured and the adapter's work to LoRA's.
    public func backward(_ x: UnsafePointer<Float>, rows n: Int, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, accumulate: Bool = false,
                         loraHidden: UnsafePointer<Float>? = nil, dropoutKey: UInt64? = nil, parallelism: Parallelism,
                         profile: StepProfile? = nil) {
        let I = inFeatures, O = outFeatures
        if let dWeight {
            Gemm.multiply(transA: true, transB: false, m: O, n: I, k: n, a: dy, lda: O, b: x, ldb: I,
                          beta: 1, c: dWeight.data, ldc: I, parallelism: parallelism)
            profile.addFLOPs(2 * Double(n * O * I))
        }
        if let dBias {
            for r in 0..<n { Kernels.add(dy + r * O, into: dBias.data, count: O) }
        }
        if let dx {
            Gemm.linearInputGradient(dy, rows: n, weight: weight, into: dx, beta: accumulate ? 1 : 0, parallelism: parallelism)
            profile.addFLOPs(2 * Double(n * O * I))
        }
        guard let lora, dx != nil || lora.dA != nil || lora.dB != nil else { return }
        profile.measure(.lora(.backward), flops: lora.backwardFLOPs(rows: n, inputGradient: dx != nil)) {
            Self.loraBackward(lora, x, rows: n, dy: dy, dx: dx, loraHidden: loraHidden, dropoutKey: dropoutKey, parallelism: parallelism)
        }
    }

    private static func loraBackward(_ lora: LoRAAdapter, _ x: UnsafePointer<Float>, rows n: Int, dy: UnsafePointer<Float>,
                                     dx: UnsafeMutablePointer<Float>?, loraHidden: UnsafePointer<Float>?, dropoutKey: UInt64?,
                                     parallelism: Parallelism) {
        if let loraHidden {
            lora.backward(x, rows: n, hidden: loraHidden, dy: dy, dx: dx, dropoutKey: dropoutKey, parallelism: parallelism)
        } else {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: n * lora.rank) { h in
                // Recompute h = drop(x)·Aᵀ (the forward's dropout mask comes back from its key).
                lora.hidden(x, rows: n, into: h.baseAddress!, dropoutKey: dropoutKey)
                lora.backward(x, rows: n, hidden: h.baseAddress!, dy: dy, dx: dx, dropoutKey: dropoutKey, parallelism: parallelism)
            }
        }
    }
}
