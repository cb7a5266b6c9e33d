import ArgumentParser
import CLISupport
import Foundation
import GGUF

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint, or a LoRA adapter, as a GGUF file for llama.cpp, Ollama and LM Studio.",
        discussion: """
        Writes MODEL (any checkpoint prune reads: full, cut or merged; tied or untied; GQA; linear, llama3 or yarn RoPE; a SentencePiece or byte-level BPE tokenizer) as one GGUF file of llama.cpp's llama architecture, with its tokenizer, special tokens and chat template. With --adapter, writes that PEFT LoRA adapter instead, as a llama.cpp LoRA adapter for MODEL (its base): `llama-cli -m base.gguf --lora adapter.gguf`.

        --dtype: f32, f16, bf16 or q8_0 (default: the checkpoint's own dtype, so that nothing is rounded; f32 for an adapter). Norms, biases and other 1-D tensors stay f32, as llama.cpp keeps them. q8_0 stores blocks of 32 values of a row as one f16 scale d = max|x|/127 and 32 signed bytes (each value within d/2, plus d's f16 rounding); a matrix whose rows are not a multiple of 32 long is written f16 instead, and the report names it.

        What llama.cpp cannot reproduce is refused in one line naming the file: dynamic RoPE scaling, yarn with beta_fast/beta_slow other than 32/1, a byte-level BPE pre-tokenizer llama.cpp has no name for.

        Examples:
          prune export out/cut --gguf out/cut-f16.gguf --dtype f16
          prune export out/cut --adapter out/healed/adapter --gguf out/healed-adapter.gguf
        """)

    @Argument(help: "Checkpoint directory (with --adapter: the base the adapter was trained on).")
    var model: String

    @Option(name: .long, help: "The GGUF file to write.")
    var gguf: String

    @Option(name: .long, help: "A PEFT LoRA adapter directory to write as a llama.cpp LoRA adapter, instead of the model.")
    var adapter: String?

    @Option(name: .long, help: "f32, f16, bf16 or q8_0 (default: the checkpoint's dtype; f32 for an adapter).")
    var dtype: String?

    @Flag(name: .long, help: "Replace the GGUF file if it exists; with --adapter, also accept an adapter that records another base.")
    var force = false

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        _ = try asUsageError { try dtype.map { try GGUFFileType.parse($0) } }
    }

    func run() throws {
        let fileType = try dtype.map { try GGUFFileType.parse($0) }
        let (modelURL, output) = (URL(fileURLWithPath: model), URL(fileURLWithPath: gguf))
        let report = try adapter.map {
            try GGUFAdapterExport.write(adapter: URL(fileURLWithPath: $0), model: modelURL, to: output, fileType: fileType, force: force)
        } ?? GGUFModelExport.write(model: modelURL, to: output, fileType: fileType, force: force)
        if json { try printJSON(encoding: report) } else { print(report.text, terminator: "") }
    }
}
