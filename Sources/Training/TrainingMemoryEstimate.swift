// What a training job will hold in memory (see MemoryEstimate for the terms), beside the training pass whose
// allocations it follows: every layer's saved activations (or, with checkpointing, each layer's input and one
// layer's buffers), the pass's gradients of the stream and the block, the loss head's chunk of logits, gradients
// and AdamW state of the trainable parameters, and a distillation teacher's weights, forward and chunk of logits.
// Dimension glossary: B batch, T tokens, N = B·T, C model dim, H query heads, G kv heads, D head dim,
// F ffn dim, V vocab, L layers, M rows per head chunk.
import Checkpoint
import Llama

extension MemoryEstimate {
    /// One training micro-batch of B×T with `trainableParameters` elements trained (`separateTrainable` of
    /// them not part of the weights, e.g. LoRA matrices, whose hidden rows take `loraWidth` floats per token
    /// and layer: the sum of the adapters' ranks), with or without gradient checkpointing. A distillation `teacher`
    /// adds its weights (as Float32, in `other`), its forward's buffers and final-normed rows for the N rows, and
    /// its chunk of rows and logits in the head.
    public static func training(config c: LlamaConfig, batch b: Int, context t: Int, threads: Int,
                                trainableParameters: Int, separateTrainable: Int, loraWidth: Int = 0,
                                checkpointing: Bool, teacher: LlamaConfig? = nil) -> MemoryEstimate {
        let n = mul(b, t), L = c.numHiddenLayers
        let C = c.hiddenSize, H = c.numAttentionHeads, G = c.numKeyValueHeads, D = c.headDim, F = c.intermediateSize
        let perLayer = mul(sum([block(c, rows: n, batch: b, tokens: t, logSumExp: true), mul(n, loraWidth)]), 4)
        var e = MemoryEstimate()
        e.weights = mul(CheckpointValidation.parameterCount(c) ?? Int.max, 4)
        // LlamaTrainingPass: every layer's input (both ways), the final norm's rows, the recomputed block output,
        // and the backward's gradients of the stream, q/k/v/attention output and the MLP's three F-wide rows.
        let pass = sum([mul(L + 1, n, C), n, mul(2, n, C), mul(n, C), mul(3, n, C), mul(2, n, H, D), mul(2, n, G, D), mul(3, n, F)])
        e.activations = sum([checkpointing ? perLayer : mul(L, perLayer), mul(pass, 4),
                             mul(n, C, 4),                                          // the block scratch's branch
                             mul(attentionScratch(queries: t, keys: t, threads: threads), 4)])
        let m = LMHeadLoss.defaultChunkRows(vocab: c.vocabSize)                    // a chunk's logits (their gradient in place),
        e.logits = sum([mul(m, c.vocabSize, 4), mul(m, c.hiddenSize, 4 * 2)])      // its rows and their gradient
        e.training = sum([mul(trainableParameters, 4 * 3), mul(separateTrainable, 4)])
        e.runtime = runtime(threads: threads)
        if let teacher {
            // Its inference forward (one block's buffers, the residual, its attention tiles) and the pass's copy of
            // its final-normed rows; its head's chunk rows and logits.
            e.other = sum([e.other, mul(CheckpointValidation.parameterCount(teacher) ?? Int.max, 4)])
            e.activations = sum([e.activations, mul(block(teacher, rows: n, batch: b, tokens: t, logSumExp: false), 4),
                                 mul(n, teacher.hiddenSize, 4 * 2), mul(attentionScratch(queries: t, keys: t, threads: threads), 4)])
            e.logits = sum([e.logits, mul(m, teacher.vocabSize, 4), mul(m, teacher.hiddenSize, 4)])
        }
        return e
    }
}
