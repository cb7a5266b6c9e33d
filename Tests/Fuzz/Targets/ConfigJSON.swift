// Fuzz target: config.json bytes through LlamaConfig (decode and validation), the key-keeping reader and
// writer ConfigJSON, and the size arithmetic CheckpointValidation does before any allocation.
import Checkpoint
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Data(FuzzInput.bytes(data, size))
    let url = URL(fileURLWithPath: "config.json")
    if let config = try? LlamaConfig.parse(bytes, file: url) {
        _ = CheckpointValidation.parameterCount(config)
        _ = config.groupSize
    }
    let file = FuzzInput.file("config.json", FuzzInput.bytes(data, size))
    if let object = try? ConfigJSON.read(file) { _ = try? ConfigJSON.data(object) }
    return 0
}
