// Random-initialised checkpoints written straight to disk in 16 bits, tensor by tensor, for shapes whose Float32
// model would not fit in memory (Llama-3.1-8B: 32 GB as Float32, 16 GB as written). Matrices are uniform on
// ±0.02·√3 (standard deviation 0.02, transformers' initializer_range), norms at 1; the values are a function of the
// seed, the tensor's name and the element index only, so the file is the same whatever the thread count.
import Checkpoint
import Foundation
import Tensor

extension LlamaModel {
    /// Writes config.json and random BF16 or F16 weights of `config`'s shape into `directory` (which must not exist
    /// or be empty), in HF's shard layout when `maxShardBytes` is given. Memory stays at one tensor.
    public static func writeRandomCheckpoint(config: LlamaConfig, to directory: URL, dtype: SafetensorsDType = .BF16,
                                             maxShardBytes: Int? = nil, seed: UInt64 = 0,
                                             parallelism: Parallelism = .allCores) throws {
        precondition(dtype == .BF16 || dtype == .F16, "16-bit checkpoints only")
        var c = config
        c.torchDtype = dtype == .BF16 ? "bfloat16" : "float16"
        let C = c.hiddenSize
        var shapes: [(String, [Int], Bool)] = [(WeightNames.embedding, [c.vocabSize, C], false)]   // (name, shape, is a norm)
        func projectionShape(_ p: Projection) -> [Int] { let s = PEFTAdapter.shape(p, c); return [s.out, s.in] }
        for i in 0..<c.numHiddenLayers {
            shapes.append((WeightNames.inputNorm(layer: i), [C], true))
            for p in Projection.allCases {
                shapes.append((WeightNames.projection(p, layer: i), projectionShape(p), false))
                let biased = p.module == "self_attn" ? c.attentionBias : c.mlpBias
                if biased { shapes.append((WeightNames.projectionBias(p, layer: i), [projectionShape(p)[0]], true)) }
            }
            shapes.append((WeightNames.postAttentionNorm(layer: i), [C], true))
        }
        shapes.append((WeightNames.finalNorm, [C], true))
        if !c.tieWordEmbeddings { shapes.append((WeightNames.lmHead, [c.vocabSize, C], false)) }
        let items = shapes.enumerated().map { index, entry in
            let (name, shape, isNorm) = entry
            return SafetensorsItem(name: name, dtype: dtype, shape: shape) { out in
                let n = shape.reduce(1, *)
                let halves = out.baseAddress!.assumingMemoryBound(to: UInt16.self)
                if isNorm {
                    let one: UInt16 = dtype == .BF16 ? 0x3F80 : 0x3C00
                    halves.update(repeating: name.hasSuffix(".bias") ? 0 : one, count: n)
                    return
                }
                let chunk = 1 << 16
                let chunks = (n + chunk - 1) / chunk
                let key = seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xD1B5_4A32_D192_ED03
                parallelism.ranges(chunks, minimumPerWorker: 1) { range in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
                    defer { scratch.deallocate() }
                    for k in range {
                        let lo = k * chunk, len = min(chunk, n - lo)
                        var state = key ^ UInt64(k) &* 0xA24B_AED4_963E_E407
                        for j in 0..<len {
                            // splitmix64, 24 bits → uniform on [−1, 1) × 0.02·√3
                            state &+= 0x9E37_79B9_7F4A_7C15
                            var z = state
                            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                            z ^= z >> 31
                            scratch[j] = (Float(z >> 40) * (2 / 16_777_216) - 1) * 0.034641016
                        }
                        if dtype == .BF16 { Kernels.f32ToBF16(scratch, halves + lo, len) }
                        else { Kernels.f32ToF16(scratch, halves + lo, len) }
                    }
                }
            }
        }
        try CheckpointDirectory.write(to: directory, config: try JSONEncoder.sorted.encode(c), items: items,
                                      maxShardBytes: maxShardBytes)
    }
}
