// One optimizer step of a finetuning run, the way llm.c writes it: the step's learning rate, the micro-batches'
// losses and gradients (each loss normalised by the counted targets of the whole step, so that accumulation
// equals one big batch), their sum over the ranks, a stop on a non-finite loss or gradient, clipping, AdamW.
// The loop around it (evaluation, checkpoints, metrics, export) is Finetuner's.
import Cluster
import Data
import Foundation
import Llama
import Support
import Training

/// What one finetuning step computes with, fixed for the run.
struct OptimizerStep {
    let options: FinetuneOptions
    let pass: LlamaTrainingPass
    let trainable: TrainableSet
    let optimizer: AdamW
    let batcher: TrainingBatcher
    let schedule: LearningRateSchedule
    let earlyExit: EarlyExitLoss?
    let layerDropout: LayerDropout?
    /// The teacher and its weights, on every micro-batch (each rank's shard); nil: plain cross-entropy.
    let distillation: Distillation?
    let communicator: Communicator
    let totalSteps: Int

    /// What a step did.
    struct Outcome {
        var loss: Double
        var learningRate: Double
        var gradientNorm: Double
        var countedTargets: Int
        /// The distilled loss's parts over the step's counted targets (nil: not distilled).
        var distillation: DistillationTally?
        /// Tokens of the step's windows over every rank.
        var tokens: Int
        /// Under MPI: some rank was asked to stop (agreed in the step's reduction).
        var stopAgreed: Bool
        var allreduceSeconds: Double
        var communicationSeconds: Double
    }

    /// A step whose loss or gradient norm is not finite: nothing was updated.
    struct NonFinite: Error {
        var what: String
        var value: Double
    }

    /// Step `step` (0-based) of the run: the parameters take their AdamW update. `stopRequested` is read when the
    /// ranks reduce, after the micro-batches, so that a Ctrl-C during the step is agreed at its end.
    func run(step: Int, stopRequested: () -> Bool) throws -> Outcome {
        let lr = schedule.rate(atStep: step)
        optimizer.learningRate = Float(lr)
        let work = batcher.nextStep(microBatches: options.gradAccum)
        let communicated = communicator.communicationSeconds
        trainable.zeroGradients()
        var (tally, parts) = lossAndGradients(of: work, step: step)
        var (stopAgreed, transfer) = (false, 0.0)
        if communicator.size > 1 {
            (stopAgreed, transfer) = Finetuner.reduce(trainable: trainable, tally: &tally, parts: &parts, stop: stopRequested(),
                                                      communicator: communicator)
        }
        let gradientNorm = trainable.gradientNorm()
        guard tally.mean.isFinite || work.countedTargets == 0, gradientNorm.isFinite else {
            throw tally.mean.isFinite ? NonFinite(what: "gradient norm", value: gradientNorm) : NonFinite(what: "loss", value: tally.mean)
        }
        if options.maxGradNorm > 0 && gradientNorm > options.maxGradNorm {
            trainable.scaleGradients(by: Float(options.maxGradNorm / (gradientNorm + 1e-6)))
        }
        if work.countedTargets > 0 { optimizer.step() }
        return Outcome(loss: tally.mean, learningRate: lr, gradientNorm: gradientNorm, countedTargets: work.countedTargets, distillation: parts,
                       tokens: work.microBatches.count * options.batchSize * communicator.size * options.context, stopAgreed: stopAgreed,
                       allreduceSeconds: transfer, communicationSeconds: communicator.communicationSeconds - communicated)
    }

    /// Forward and backward of this rank's part of each micro-batch, gradients summed into the trainable set; the
    /// loss and, when distilled, its parts.
    private func lossAndGradients(of work: TrainingStep, step: Int) -> (LossTally, DistillationTally?) {
        var tally = LossTally()
        var parts = distillation.map { _ in DistillationTally() }
        let normalizer = work.countedTargets
        guard normalizer > 0 else { return (tally, parts) }
        let o = options, comm = communicator, L = pass.model.layers.count
        let exits = earlyExit?.weights(layers: L, step: step, totalSteps: totalSteps)
        let dropScale = o.layerDropoutSchedule == "linear" ? Double(step) / Double(max(1, totalSteps - 1)) : 1
        for (i, global) in work.microBatches.enumerated() {
            let mb = Finetuner.shard(global, rank: comm.rank, of: comm.size)
            let key: UInt64? = o.lora && o.dropout > 0 ? Finetuner.dropoutKey(seed: o.seed, step: step, microBatch: i) : nil
            // The whole global batch's layer-dropout mask, this rank's rows: N ranks draw one process's masks.
            let skip = layerDropout.map { ld -> LayerSkipMask in
                let all = ld.mask(key: Finetuner.dropoutKey(seed: o.seed ^ 0x4C44_524F_5055_5400, step: step, microBatch: i),
                                  batch: global.batch, layers: L, scale: dropScale)
                return LayerSkipMask(Array(all.skips[(comm.rank * mb.batch)..<((comm.rank + 1) * mb.batch)]))
            }
            tally.add(pass.run(tokens: mb.tokens, targets: mb.targets, lossNormalizer: normalizer, dropoutKey: key,
                               exits: exits, skipping: skip, distillation: distillation))
            if let part = pass.distillationTally { parts?.add(part) }
        }
        return (tally, parts)
    }
}
