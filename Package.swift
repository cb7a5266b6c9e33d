// swift-tools-version:6.0
// The prune toolkit: measure which Llama layers do least, cut them, heal the cut model with LoRA.
// Module graph (one direction only):
//   CBLAS, CHDF5, CSentencePiece, CKernels → Tensor → ModelIO → Llama → Analysis | Surgery | Training
//   → Pipeline → PruneCLI
import PackageDescription

// The hot non-GEMM loops live in C, built for baseline x86-64 with AVX2 and AVX-512 variants beside the
// scalar one (chosen at run time, Sources/CKernels/dispatch.c): no -march here, so any x86-64 runs them.
let fastC: [CSetting] = [.unsafeFlags(["-O3", "-ffp-contract=fast"])]

let package = Package(
    name: "prune",
    products: [
        .executable(name: "prune", targets: ["PruneCLI"]),
        .library(name: "PruneKit", targets: ["Tensor", "ModelIO", "Llama", "Analysis", "Surgery", "Training", "Pipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: system-library shims
        // OpenBLAS is loaded at run time (dlopen), so that its kernel set can be chosen for this CPU.
        .target(name: "CBLAS", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .target(
            name: "CSentencePiece",
            cxxSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("sentencepiece")]
        ),
        .target(name: "CKernels", cSettings: fastC),

        // MARK: library
        .target(name: "Tensor", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "ModelIO", dependencies: ["Tensor", "CHDF5", "CSentencePiece"]),
        .target(name: "Llama", dependencies: ["Tensor", "ModelIO", "CKernels"]),
        .target(name: "Analysis", dependencies: ["Tensor", "ModelIO", "Llama"]),
        .target(name: "Surgery", dependencies: ["Tensor", "ModelIO", "Llama"]),
        .target(name: "Training", dependencies: ["Tensor", "ModelIO", "Llama", "CKernels"]),
        .target(name: "Pipeline", dependencies: ["ModelIO", "Llama", "Analysis", "Surgery", "Training"]),

        // MARK: command line
        .executableTarget(
            name: "PruneCLI",
            dependencies: ["Pipeline", "ModelIO", "Llama", "Analysis", "Surgery", "Training",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // MARK: tests
        .target(name: "TestSupport", dependencies: ["Tensor", "ModelIO"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "CKernels", "TestSupport"]),
        .testTarget(name: "ModelIOTests", dependencies: ["ModelIO", "TestSupport"]),
        .testTarget(name: "LlamaTests", dependencies: ["Llama", "ModelIO", "TestSupport"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "Llama", "ModelIO", "TestSupport"]),
        .testTarget(name: "SurgeryTests", dependencies: ["Surgery", "Llama", "ModelIO", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Llama", "ModelIO", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
