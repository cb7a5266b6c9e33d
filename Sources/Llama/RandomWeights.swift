// Random-initialised models of a given shape, for benchmarks and tests: held in memory (`LlamaModel.random`) or
// streamed to a checkpoint tensor by tensor (`writeRandomCheckpoint`) for shapes whose Float32 model would not fit
// (Llama-3.1-8B: 32 GB as Float32, 16 GB as bf16). Both take every value from `RandomWeights.values`, a function of
// the seed, the tensor's HF name and the element's index only: matrices ~ N(0, 0.02²) (transformers'
// initializer_range), norm weights 1 and biases 0 (transformers' _init_weights). So a model and a checkpoint of one
// seed hold the same weights (the file's rounded to its dtype), whatever the thread count.
import Checkpoint
import Foundation
import Support
import Tensor

/// The values of random-initialised weights.
enum RandomWeights {
    /// Standard deviation of the matrices: transformers' `initializer_range`.
    static let standardDeviation: Float = 0.02

    /// Elements `range` of the tensor called `name` of `shape`, into `out` (out[0] is element `range.lowerBound`).
    static func values(_ name: String, shape: [Int], seed: UInt64, range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        guard shape.count == 2 else {
            out.update(repeating: name.hasSuffix(".bias") ? 0 : 1, count: range.count)
            return
        }
        let stream = SeededGenerator.value(seed: seed, index: nameHash(name))
        var i = range.lowerBound
        while i < range.upperBound {
            // Box–Muller: elements 2p and 2p+1 are the pair of normals of draw p. u1 is in (0, 1], so the log is finite.
            let bits = SeededGenerator.value(seed: stream, index: UInt64(i / 2))
            let u1 = (Float(bits >> 40) + 1) * 0x1p-24, u2 = Float((bits >> 16) & 0xFF_FFFF) * 0x1p-24
            let radius = (-2 * log(u1)).squareRoot() * standardDeviation, angle = 2 * Float.pi * u2
            if i % 2 == 0 {
                out[i - range.lowerBound] = radius * cos(angle)
                i += 1
            }
            if i < range.upperBound {
                out[i - range.lowerBound] = radius * sin(angle)
                i += 1
            }
        }
    }

    /// FNV-1a of the name's UTF-8: unlike Hasher, the same in every process.
    static func nameHash(_ name: String) -> UInt64 {
        name.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }
}

extension LlamaModel {
    /// A model of `config`'s shape with seeded random weights (Float32).
    public static func random(config c: LlamaConfig, seed: UInt64 = 0, parallelism: Parallelism = .allCores) -> LlamaModel {
        func tensor(_ name: String, _ shape: [Int]) -> Tensor {
            let t = Tensor(zeros: shape)
            parallelism.ranges(t.count, granularity: 2, minimumPerWorker: 1 << 16) { range in
                RandomWeights.values(name, shape: shape, seed: seed, range: range, into: t.data + range.lowerBound)
            }
            return t
        }
        func linear(_ p: Projection, _ i: Int) -> Linear {
            let (out, inputs) = PEFTAdapter.shape(p, c)
            let biased = p.module == "self_attn" ? c.attentionBias : c.mlpBias
            return Linear(weight: tensor(WeightNames.projection(p, layer: i), [out, inputs]),
                          bias: biased ? tensor(WeightNames.projectionBias(p, layer: i), [out]) : nil)
        }
        let C = c.hiddenSize
        let layers = (0..<c.numHiddenLayers).map { i in
            LlamaLayer(q: linear(.q, i), k: linear(.k, i), v: linear(.v, i), o: linear(.o, i),
                       gate: linear(.gate, i), up: linear(.up, i), down: linear(.down, i),
                       inputNorm: tensor(WeightNames.inputNorm(layer: i), [C]),
                       postAttentionNorm: tensor(WeightNames.postAttentionNorm(layer: i), [C]))
        }
        return LlamaModel(config: c, embedding: tensor(WeightNames.embedding, [c.vocabSize, C]), layers: layers,
                          finalNorm: tensor(WeightNames.finalNorm, [C]),
                          lmHead: c.tieWordEmbeddings ? nil : tensor(WeightNames.lmHead, [c.vocabSize, C]), parallelism: parallelism)
    }

    /// Writes config.json and `random(config:seed:)`'s weights as `dtype` (F32, BF16 or F16) into `directory` (which
    /// must not exist or be empty), in HF's shard layout when `maxShardBytes` is given. Memory stays at one tensor.
    public static func writeRandomCheckpoint(config: LlamaConfig, to directory: URL, dtype: SafetensorsDType = .BF16,
                                             maxShardBytes: Int? = nil, seed: UInt64 = 0,
                                             parallelism: Parallelism = .allCores) throws {
        guard dtype.outputName != nil else {
            throw PruneError(file: directory, "random checkpoints are written as f32, bf16 or f16, not \(dtype.rawValue)")
        }
        var c = config
        c.torchDtype = CheckpointRewriter.torchName(dtype)
        let items = CheckpointValidation.expectedTensors(c).map { name, shape in
            SafetensorsItem(name: name, dtype: dtype, shape: shape) { out in
                let n = shape.reduce(1, *), chunk = 1 << 16
                parallelism.ranges((n + chunk - 1) / chunk, minimumPerWorker: 1) { chunks in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
                    defer { scratch.deallocate() }
                    for k in chunks {
                        let lo = k * chunk, count = min(chunk, n - lo)
                        RandomWeights.values(name, shape: shape, seed: seed, range: lo..<lo + count, into: scratch)
                        let bytes = out.baseAddress! + lo * dtype.size
                        switch dtype {
                        case .F32: bytes.copyMemory(from: scratch, byteCount: count * 4)
                        case .BF16: Kernels.f32ToBF16(scratch, bytes.assumingMemoryBound(to: UInt16.self), count)
                        default: Kernels.f32ToF16(scratch, bytes.assumingMemoryBound(to: UInt16.self), count)
                        }
                    }
                }
            }
        }
        try CheckpointDirectory.write(to: directory, config: try JSONEncoder.sorted.encode(c), items: items,
                                      maxShardBytes: maxShardBytes)
    }
}
