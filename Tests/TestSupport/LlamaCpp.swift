// llama.cpp as a test oracle for the GGUF files we write: its library (libllama) driven through PyPI's
// llama-cpp-python bindings, pointed at the libllama.so of a llama.cpp build (LLAMA_CPP_LIB_PATH). The build is found
// as $PRUNE_LLAMA_CPP (its bin directory), on PATH (the directory holding llama-completion), or at
// ~/.cache/prune-dev/llama.cpp/build/bin; the Python as PythonVenv finds it. Tests skip with the reason printed when
// either is missing (CI has no llama.cpp).
import Foundation
import Support
import XCTest

/// What llama.cpp computes on a GGUF file.
public struct LlamaCppRun {
    /// Logits at every position of the prompt, (T, V) row-major.
    public var logits: [Float]
    /// The vocabulary size (row length of `logits`).
    public var vocabularySize: Int
    /// Greedy continuation of the prompt (argmax of each step's logits; no stop tokens).
    public var continuation: [Int32]
    /// llama.cpp's tokenization of each text given (with BOS when the file says add_bos_token).
    public var tokenizations: [[Int32]]
}

public enum LlamaCpp {
    /// The directory holding libllama.so, or nil.
    public static let libraryDirectory: URL? = {
        let env = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let given = env["PRUNE_LLAMA_CPP"] { candidates.append(given) }
        for dir in (env["PATH"] ?? "").split(separator: ":").map(String.init)
        where FileManager.default.isExecutableFile(atPath: dir + "/llama-completion") {
            candidates += [dir, dir + "/../lib"]
        }
        candidates.append(NSHomeDirectory() + "/.cache/prune-dev/llama.cpp/build/bin")
        return candidates.map { URL(fileURLWithPath: $0).standardizedFileURL }
            .first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("libllama.so").path) }
    }()

    /// The Python that imports llama_cpp with that library, or nil.
    public static let python: String? = {
        guard let lib = libraryDirectory else { return nil }
        return PythonVenv.interpreter(importing: "numpy, llama_cpp", environment: ["LLAMA_CPP_LIB_PATH": lib.path])
    }()

    /// Throws a skip (reason printed) unless llama.cpp and its Python bindings are there.
    public static func require() throws {
        guard libraryDirectory != nil else {
            throw Fixtures.skip("no llama.cpp build (libllama.so) in $PRUNE_LLAMA_CPP, on PATH or in ~/.cache/prune-dev/llama.cpp/build/bin")
        }
        guard python != nil else {
            throw Fixtures.skip("no Python with llama-cpp-python ($PRUNE_PYTHON or ~/.cache/prune-dev/venv): pip install llama-cpp-python==0.3.36 (CMAKE_ARGS=-DLLAMA_BUILD=OFF uses the built libllama)")
        }
    }

    /// Loads `gguf` (with the LoRA adapter `lora`), evaluates `prompt`, continues it greedily `generate` tokens, and
    /// tokenizes `texts`.
    public static func run(_ gguf: URL, lora: URL? = nil, prompt: [Int32], generate: Int, texts: [String] = []) throws -> LlamaCppRun {
        try require()
        let scratch = try Fixtures.temporaryDirectory("llama-cpp")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let scriptURL = scratch.appendingPathComponent("evaluate.py")
        try Data(script.utf8).write(to: scriptURL)
        func evaluate(repack: Bool) throws -> ChildProcessResult {
            let request: [String: Any] = ["gguf": gguf.path, "lora": lora?.path ?? NSNull(), "prompt": prompt.map(Int.init), "generate": generate,
                                          "texts": texts, "logits": scratch.appendingPathComponent("logits.f32").path, "repack": repack]
            let requestURL = scratch.appendingPathComponent("request.json")
            try JSONSerialization.data(withJSONObject: request).write(to: requestURL)
            return try ChildProcess.run(python!, [scriptURL.path, requestURL.path],
                                        environment: ["LLAMA_CPP_LIB_PATH": libraryDirectory!.path, "OMP_NUM_THREADS": "1"])
        }
        var r = try evaluate(repack: true)
        // A build with -march=native can hold kernels the machine will not run (the AMX Q8_0 kernel of the weight
        // repacking dies of SIGILL where the OS does not grant AMX): then the plain kernels judge the file.
        if r.signaled && r.status == SIGILL {
            print("llama.cpp died of SIGILL on \(gguf.lastPathComponent) with weight repacking; evaluating without it")
            r = try evaluate(repack: false)
        }
        guard r.status == 0 else { throw PruneError("llama.cpp check", "python failed: \(r.stderr.suffix(2000))") }
        let output = r.stdout
        guard let answer = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
              let vocabulary = answer["vocab"] as? Int, let continuation = answer["continuation"] as? [Int],
              let tokenizations = answer["tokenized"] as? [[Int]] else {
            throw PruneError("llama.cpp check", "unreadable answer: \(output.prefix(300))")
        }
        let data = try Data(contentsOf: scratch.appendingPathComponent("logits.f32"))
        let logits = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return LlamaCppRun(logits: logits, vocabularySize: vocabulary, continuation: continuation.map(Int32.init),
                           tokenizations: tokenizations.map { $0.map(Int32.init) })
    }

    static let script = #"""
import json, sys
import numpy as np
import llama_cpp
req = json.load(open(sys.argv[1]))
prompt = req["prompt"]
if not req["repack"]:
    import llama_cpp.llama_cpp as library
    defaults = library.llama_model_default_params
    def without_repacking():
        params = defaults()
        params.use_extra_bufts = False
        return params
    library.llama_model_default_params = without_repacking
model = llama_cpp.Llama(model_path=req["gguf"], lora_path=req["lora"], n_ctx=max(64, len(prompt) + req["generate"] + 8),
                        n_batch=len(prompt), n_ubatch=len(prompt), n_threads=1, logits_all=True, verbose=False)
tokenized = [model.tokenize(t.encode("utf-8"), add_bos=model._model.add_bos_token(), special=True) for t in req["texts"]]
model.reset()
model.eval(prompt)
np.asarray(model.scores[:len(prompt)], dtype=np.float32).tofile(req["logits"])
continuation = []
for _ in range(req["generate"]):
    token = int(np.argmax(model.scores[model.n_tokens - 1]))
    continuation.append(token)
    model.eval([token])
print(json.dumps({"vocab": model.n_vocab(), "continuation": continuation, "tokenized": tokenized}))
"""#
}
