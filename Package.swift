// swift-tools-version:6.0
// The prune toolkit: measure which Llama layers do least, cut them, heal the cut model with LoRA.
// Module graph (one direction only; Tests/ArchitectureTests checks it and that each target's imports equal its
// dependencies):
//   CBLAS, CKernels, CDNNL → Tensor;  Support → Checkpoint (+Tensor) → Llama → Analysis | Surgery | Training | Generation → Jobs →
//   Finetuning → Bench | Recipes → CLISupport → PruneCLI, FinetuneCLI;  Tokenizers (+CSentencePiece) → Data and Reports (+CHDF5)
//   are used from Analysis up;  CMPI → Cluster (MPI ranks, used by Analysis, Jobs, Finetuning and the executables);
//   Checkpoint + Tokenizers → GGUF (llama.cpp files, used by Finetuning and PruneCLI)
import PackageDescription

// The hot non-GEMM loops live in C, built for baseline x86-64 with AVX2 and AVX-512 variants beside the
// scalar one (chosen at run time, Sources/CKernels/dispatch.c): no -march here, so any x86-64 runs them.
let fastC: [CSetting] = [.unsafeFlags(["-O3", "-ffp-contract=fast"])]

let package = Package(
    name: "prune",
    products: [
        .executable(name: "prune", targets: ["PruneCLI"]),
        .executable(name: "finetune", targets: ["FinetuneCLI"]),
        .library(name: "PruneKit", targets: ["Support", "Cluster", "Tensor", "Checkpoint", "Tokenizers", "Data", "Reports", "Llama",
                                             "GGUF", "Analysis", "Surgery", "Training", "Generation", "Jobs", "Finetuning", "Bench", "Recipes"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // MARK: system libraries and C kernels
        // OpenBLAS is loaded at run time (dlopen), so that its kernel set can be chosen for this CPU.
        .target(name: "CBLAS", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .target(
            name: "CSentencePiece",
            cxxSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("sentencepiece")]
        ),
        .target(name: "CKernels", cSettings: fastC),
        // OpenMPI is loaded at run time too (dlopen), so that the package builds and runs where MPI is absent.
        .target(name: "CMPI", linkerSettings: [.linkedLibrary("dl")]),
        // oneDNN (bf16 matrix multiplies for --compute bf16) is loaded at run time as well; built against its headers
        // when libdnnl-dev is installed, without bf16 compute otherwise.
        .target(name: "CDNNL", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("dl")]),

        // MARK: library
        // Errors with the file they concern, atomic writes, mapped files, JSON text, child processes, progress events.
        .target(name: "Support"),
        // The ranks of an mpirun job and their collectives (allreduce, broadcast); one rank without mpirun.
        .target(name: "Cluster", dependencies: ["CMPI"]),
        // Tensors, GEMM (the only caller of cblas_sgemm; bf16 products through oneDNN), the fused kernels, CPU facts.
        .target(name: "Tensor", dependencies: ["CBLAS", "CKernels", "CDNNL"]),
        // safetensors, config.json, weight names, the key-preserving checkpoint rewriter, PEFT LoRA adapters.
        .target(name: "Checkpoint", dependencies: ["Support", "Tensor"]),
        // SentencePiece, byte-level BPE, chat templates.
        .target(name: "Tokenizers", dependencies: ["Support", "CSentencePiece"]),
        // Datasets; training records, label masks, packed windows, held-out splits, the batcher; multiple-choice task files.
        .target(name: "Data", dependencies: ["Support", "Tokenizers"]),
        // HDF5, SVG, the training metrics log.
        .target(name: "Reports", dependencies: ["Support", "CHDF5"]),
        // The model: ops as forward/backward pairs, LoRA, the block, the model, the KV cache and decoding session.
        .target(name: "Llama", dependencies: ["Support", "Tensor", "Checkpoint"]),
        // GGUF files for llama.cpp: the format (writer, reader, f16/bf16/q8_0), the llama architecture's keys and tensor
        // names, the tokenizer's vocabulary, and the export of a checkpoint or a PEFT adapter.
        .target(name: "GGUF", dependencies: ["Support", "Tensor", "Checkpoint", "Tokenizers"]),
        .target(name: "Analysis", dependencies: ["Support", "Cluster", "Tensor", "Checkpoint", "Tokenizers", "Data", "Reports", "Llama"]),
        .target(name: "Surgery", dependencies: ["Support", "Tensor", "Checkpoint"]),
        // The training pass (the model's forward and backward with its loss), the losses (lm_head cross-entropy, early
        // exits, distillation), layer dropout, what trains, AdamW, the schedule, training checkpoints, the memory a training job needs.
        .target(name: "Training", dependencies: ["Support", "Tensor", "Checkpoint", "Llama"]),
        // Batch-1 generation over a DecodeSession: plain, self-speculative (greedy and sampled) and early-exit
        // generators, the sampling distribution, the draft vocabulary, exit:auto's cost model.
        .target(name: "Generation", dependencies: ["Support", "Tensor", "Llama"]),
        // The command flows as library calls (analyze, eval, cut, merge, generate, tokenize) over a ModelSource that
        // loads the model once its memory estimate fits; speculation setup and profiles, the job log, export checks.
        .target(name: "Jobs", dependencies: ["Support", "Cluster", "Tensor", "Checkpoint", "Tokenizers", "Data", "Reports", "Llama",
                                             "Analysis", "Surgery", "Training", "Generation"]),
        // `finetune` as a library call: options, data, the training loop (one rank or data-parallel), the optimizer step, export
        // (PEFT adapter, merged checkpoint, and with --gguf the merged GGUF).
        .target(name: "Finetuning", dependencies: ["Support", "Cluster", "Tensor", "Checkpoint", "Tokenizers", "Data", "Reports", "Llama",
                                                   "GGUF", "Surgery", "Training", "Jobs"]),
        // `prune bench`: benchmark shapes, forward/decode/training/healing/speculation benchmarks, the PyTorch and llama.cpp
        // baselines, the step breakdown, random checkpoints.
        .target(name: "Bench", dependencies: ["Support", "Tensor", "Checkpoint", "Tokenizers", "Data", "Reports", "Llama", "Training", "Generation",
                                              "Jobs", "Finetuning"]),
        // `prune run`: the YAML recipe, the layer strategies, the runner and its stage cache, the run report, text drift,
        // the layerskip study.
        .target(name: "Recipes", dependencies: ["Support", "Tensor", "Checkpoint", "Tokenizers", "Data", "Reports", "Llama", "Generation", "Analysis",
                                                "Surgery", "Training", "Jobs", "Finetuning", .product(name: "Yams", package: "Yams")]),

        // MARK: command line
        // What both executables share: their main() (interrupts, OpenBLAS, the one error line), a failing rank
        // ending an mpirun job, the printer of the library's progress events, and the option groups both declare
        // (--threads/--weights-dtype, --context/--batch-size, --dtype).
        .target(name: "CLISupport", dependencies: ["Support", "Cluster", "Tensor", "Checkpoint", "Llama", "Jobs",
                                                   .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        .executableTarget(
            name: "PruneCLI",
            dependencies: ["Support", "Cluster", "Tensor", "Checkpoint", "Llama", "GGUF", "Generation", "Analysis", "Surgery", "Training", "Jobs", "Bench",
                           "Recipes", "CLISupport", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        .executableTarget(
            name: "FinetuneCLI",
            dependencies: ["Support", "Cluster", "Tensor", "Checkpoint", "Llama", "Training", "Jobs", "Finetuning", "CLISupport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // MARK: tests
        .target(name: "TestSupport", dependencies: ["Support", "Tensor", "Checkpoint"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "CKernels", "TestSupport"]),
        .testTarget(name: "CheckpointTests", dependencies: ["Support", "Tensor", "Checkpoint", "TestSupport"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Support", "Tokenizers", "TestSupport"]),
        .testTarget(name: "DataTests", dependencies: ["Support", "Tokenizers", "Data", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Support", "Reports", "TestSupport"]),
        .testTarget(name: "LlamaTests", dependencies: ["Support", "Tensor", "Checkpoint", "Tokenizers", "Llama", "Generation", "Surgery", "Training",
                                                       "TestSupport"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Support", "Data", "Reports", "Llama", "Analysis", "TestSupport"]),
        .testTarget(name: "SurgeryTests", dependencies: ["Support", "Tensor", "Checkpoint", "Llama", "Surgery", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Support", "Tensor", "Checkpoint", "Llama", "Training", "TestSupport"]),
        .testTarget(name: "PipelineTests", dependencies: ["Support", "Tensor", "Checkpoint", "Tokenizers", "Data", "Llama", "Generation", "Analysis", "Surgery", "Training",
                                                            "Jobs", "Finetuning", "Bench", "Recipes", "TestSupport"]),
        // Package.swift against the imports and the intended direction of the graph.
        .testTarget(name: "GGUFTests", dependencies: ["Support", "Tensor", "Checkpoint", "Tokenizers", "Llama", "Generation", "Surgery", "Training",
                                                      "GGUF", "TestSupport"]),
        .testTarget(name: "ArchitectureTests", dependencies: ["TestSupport"]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster"]),
        .testTarget(name: "CLITests", dependencies: ["Support", "Tensor", "Checkpoint", "CLISupport", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
