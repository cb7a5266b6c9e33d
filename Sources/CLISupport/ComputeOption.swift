// --compute f32|bf16 of the commands whose time goes into large matrix products (finetune, eval, analyze, bench):
// one declaration, the library's enum listed in --help as it is.
import ArgumentParser
import Tensor

/// --compute.
public struct ComputeOption: ParsableArguments {
    @Option(name: .long, help: "How the frozen projections and the lm_head multiply: f32 (the default, exact) or bf16 (rounded to bf16 at the product's input, Float32 accumulation, as torch.autocast does; through oneDNN, on CPUs with AVX512-BF16 or AMX).")
    public var compute: ComputePrecision?

    public init() {}
}

extension ComputePrecision: ExpressibleByArgument {}
