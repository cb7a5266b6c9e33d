// A projection y = x·Wᵀ (+ bias) (+ LoRA), weights stored (out, in) as PyTorch does.
// Dimension glossary: N rows (B·T), I in features, O out features, R LoRA rank.
import Tensor

/// A linear layer with an optional bias and an optional LoRA adapter.
public final class Linear {
    public let weight: Tensor       // (O, I)
    public var bias: Tensor?        // (O)
    public var lora: LoRAAdapter?
    /// Gradients of weight and bias, allocated only when the layer trains in full.
    public var dWeight: Tensor?     // (O, I)
    public var dBias: Tensor?       // (O)

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public init(weight: Tensor, bias: Tensor? = nil) {
        precondition(weight.shape.count == 2, "Linear weight must be 2-D, got \(weight.shape)")
        self.weight = weight
        self.bias = bias
    }

    /// y (N, O) = x (N, I)·Wᵀ + bias + scale·(x·Aᵀ)·Bᵀ. `loraHidden` (N, R) receives x·Aᵀ when given
    /// (the backward pass needs it); otherwise a temporary is used.
    public func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>,
                        loraHidden: UnsafeMutablePointer<Float>? = nil) {
        Gemm.linear(x, rows: n, inFeatures: inFeatures, weight: weight.data, outFeatures: outFeatures, into: y)
        if let bias {
            for r in 0..<n { Kernels.add(bias.data, into: y + r * outFeatures, count: outFeatures) }
        }
        if let lora {
            let h = loraHidden ?? UnsafeMutablePointer<Float>.allocate(capacity: n * lora.rank)
            defer { if loraHidden == nil { h.deallocate() } }
            Gemm.linear(x, rows: n, inFeatures: inFeatures, weight: lora.a.data, outFeatures: lora.rank, into: h)
            Gemm.linear(h, rows: n, inFeatures: lora.rank, weight: lora.b.data, outFeatures: outFeatures, into: y,
                        alpha: lora.scale, beta: 1)
        }
    }
}
