// The one check of a checkpoint directory that every command reading one makes (eval, analyze, generate
// through LlamaModel.load; cut and merge through CheckpointRewriter) before anything is allocated or
// written: config.json decodes and is a sane Llama config; the sizes it implies fit in the safetensors
// files (so a vocab_size of 10⁹ is refused before 10⁹ rows are allocated); every tensor the config implies
// is present, with its shape and a floating dtype; no layer tensor the config does not explain; every
// span inside its file (checked by SafetensorsFile); and the tokenizer files, when present, parse.
// Dimension glossary: C model dim, H query heads, G kv heads, D head dim, F ffn dim, V vocab, L layers.
import Foundation
import Support

/// A checkpoint directory that passed CheckpointValidation: its config and its opened tensors.
public struct ValidatedCheckpoint {
    /// The checkpoint directory.
    public let directory: URL
    /// config.json, decoded and checked.
    public let config: LlamaConfig
    /// The safetensors files (headers checked, mapped, nothing converted yet).
    public let tensors: CheckpointTensors
}

/// Checks a checkpoint directory end to end; every refusal is one PruneError naming the file at fault.
public enum CheckpointValidation {
    /// Layer tensors that older converters leave in and every loader ignores.
    static let ignoredLayerTensors: Set<String> = ["self_attn.rotary_emb.inv_freq"]

    /// Validates `directory` and returns its config and tensors.
    public static func validate(_ directory: URL) throws -> ValidatedCheckpoint {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PruneError(file: directory, "model directory not found")
        }
        let configURL = directory.appendingPathComponent("config.json")
        let config = try LlamaConfig.load(configURL)
        let tensors = try CheckpointTensors(directory: directory)
        try checkSizes(config, configURL, tensors)
        try checkTensors(config, tensors)
        try TokenizerFileCheck.check(directory: directory, vocabularySize: config.vocabSize)
        return ValidatedCheckpoint(directory: directory, config: config, tensors: tensors)
    }

    /// Every tensor `config` implies, by HF name, with its shape (lm_head only when untied).
    public static func expectedTensors(_ c: LlamaConfig) -> [(name: String, shape: [Int])] {
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        var out: [(String, [Int])] = [(WeightNames.embedding, [c.vocabSize, C])]
        let projections: [(Projection, Int, Int)] = [(.q, H * D, C), (.k, G * D, C), (.v, G * D, C), (.o, C, H * D),
                                                     (.gate, F, C), (.up, F, C), (.down, C, F)]
        for i in 0..<c.numHiddenLayers {
            out.append((WeightNames.inputNorm(layer: i), [C]))
            out.append((WeightNames.postAttentionNorm(layer: i), [C]))
            for (p, rows, cols) in projections {
                out.append((WeightNames.projection(p, layer: i), [rows, cols]))
                let biased = p.module == "self_attn" ? c.attentionBias : c.mlpBias
                if biased { out.append((WeightNames.projectionBias(p, layer: i), [rows])) }
            }
        }
        out.append((WeightNames.finalNorm, [C]))
        if !c.tieWordEmbeddings { out.append((WeightNames.lmHead, [c.vocabSize, C])) }
        return out
    }

    /// Elements the config implies, or nil when the count overflows an Int.
    public static func parameterCount(_ c: LlamaConfig) -> Int? {
        let C = c.hiddenSize
        guard let perLayer = layerParameterCount(c), let layers = mul(perLayer, c.numHiddenLayers),
              let embedding = mul(c.vocabSize, C) else { return nil }
        return add(layers, embedding, c.tieWordEmbeddings ? 0 : embedding, C)
    }

    /// Elements of one decoder layer (its two norms, seven projections and their biases), or nil on overflow.
    public static func layerParameterCount(_ c: LlamaConfig) -> Int? {
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        let attnBias = c.attentionBias ? add(mul(H, D), mul(2, G, D), C) : 0
        let mlpBias = c.mlpBias ? add(mul(2, F), C) : 0
        return add(mul(2, C), mul(H, D, C), mul(2, G, D, C), mul(C, H, D), mul(3, F, C), attnBias, mlpBias)
    }

    /// The product, or nil when it overflows an Int.
    private static func mul(_ xs: Int...) -> Int? {
        var p = 1
        for x in xs {
            let (r, o) = p.multipliedReportingOverflow(by: x)
            if o { return nil }
            p = r
        }
        return p
    }

    /// The sum, or nil when a term is nil or it overflows an Int.
    private static func add(_ xs: Int?...) -> Int? {
        var s = 0
        for x in xs {
            guard let x else { return nil }
            let (r, o) = s.addingReportingOverflow(x)
            if o { return nil }
            s = r
        }
        return s
    }

    /// The sizes config.json states against the bytes the safetensors files hold, before any tensor is
    /// looked at: at two bytes an element (the smallest floating dtype read), the weights must fit.
    static func checkSizes(_ c: LlamaConfig, _ configURL: URL, _ tensors: CheckpointTensors) throws {
        let held = tensors.files.reduce(0) { $0 + $1.dataBytes }
        let sizes = "vocab_size \(c.vocabSize), hidden_size \(c.hiddenSize), intermediate_size \(c.intermediateSize), "
            + "num_hidden_layers \(c.numHiddenLayers), \(c.numAttentionHeads) heads of \(c.headDim)"
        guard let count = parameterCount(c), case let (bytes, false) = count.multipliedReportingOverflow(by: 2) else {
            throw PruneError(file: configURL, "sizes (\(sizes)) imply more parameters than can be counted")
        }
        guard bytes <= held else {
            throw PruneError(file: configURL, "sizes (\(sizes)) imply \(count) parameters (at least \(bytes) bytes), "
                             + "but the safetensors files hold \(held) bytes of tensor data")
        }
    }

    /// Every expected tensor present with its shape and a floating dtype; no layer tensor beyond them.
    static func checkTensors(_ c: LlamaConfig, _ tensors: CheckpointTensors) throws {
        let expected = expectedTensors(c)
        let expectedNames = Set(expected.map(\.name))
        for (name, shape) in expected {
            guard tensors.contains(name) else {
                if name == WeightNames.lmHead {
                    throw PruneError(file: tensors.directory, "tie_word_embeddings is false but the checkpoint has no lm_head.weight")
                }
                throw PruneError(file: tensors.directory, "checkpoint has no tensor \"\(name)\" (config.json implies it)")
            }
            let (file, entry) = try tensors.entry(name)
            guard entry.shape == shape else {
                throw PruneError(file: file.url, "tensor \"\(name)\" has shape \(entry.shape), config.json implies \(shape)")
            }
            guard entry.dtype.isFloatingSupported else {
                throw PruneError(file: file.url, "tensor \"\(name)\" has dtype \(entry.dtype.rawValue); only F32, F16, BF16 and F64 weights are supported")
            }
        }
        for name in tensors.names where !expectedNames.contains(name) {
            guard let (layer, rest) = WeightNames.splitLayer(name) else { continue }
            let file = try tensors.entry(name).file
            if layer >= c.numHiddenLayers {
                throw PruneError(file: file.url, "tensor \"\(name)\" belongs to layer \(layer) but config.json says num_hidden_layers = \(c.numHiddenLayers)")
            }
            guard ignoredLayerTensors.contains(rest) else {
                throw PruneError(file: file.url, "unexpected tensor \"\(name)\" (not part of a Llama layer as config.json describes it)")
            }
        }
    }
}
