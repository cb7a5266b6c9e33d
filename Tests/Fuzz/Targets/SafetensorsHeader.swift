// Fuzz target: a whole safetensors file (header length, JSON header, data) through SafetensorsFile, then
// every floating tensor converted to Float32. Anything but a PruneError is a finding.
import Checkpoint
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let url = FuzzInput.file("model.safetensors", FuzzInput.bytes(data, size))
    guard let file = try? SafetensorsFile(url: url) else { return 0 }
    for entry in file.entries where entry.dtype.isFloatingSupported {
        _ = try? file.tensor(entry.name)
    }
    return 0
}
