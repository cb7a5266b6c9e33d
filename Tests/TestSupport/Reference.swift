// The transformers/PEFT reference for stories260K: reference.json (inputs, scalars, tolerances) and
// reference.safetensors (tensors), shipped in Tests/Fixtures/reference.
import Checkpoint
import Support
import Foundation
import Tensor

/// Ground truth computed by transformers in float64 on the shipped Checkpoints/stories260K.
public final class Reference {
    public let json: [String: Any]
    public let tensors: SafetensorsFile
    public let modelDirectory: URL

    /// `name`.json and `name`.safetensors: "reference" (forward, analysis, LoRA, AdamW) or "layerskip"
    /// (early-exit loss and layer dropout).
    public init(_ name: String = "reference") throws {
        let dir = Fixtures.file("reference/stories260K")
        let data = try Data(contentsOf: dir.appendingPathComponent("\(name).json"))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw PruneError(file: dir.appendingPathComponent("\(name).json"), "not a JSON object")
        }
        json = object
        tensors = try SafetensorsFile(url: dir.appendingPathComponent("\(name).safetensors"))
        modelDirectory = Fixtures.stories260K
    }

    /// A value by dotted path, e.g. "tolerances.loss_abs".
    public func value(_ path: String) -> Any? {
        var cur: Any? = json
        for key in path.split(separator: ".") { cur = (cur as? [String: Any])?[String(key)] }
        return cur
    }

    public func double(_ path: String) -> Double { (value(path) as! NSNumber).doubleValue }

    /// A 2-D integer array as rows.
    public func idRows(_ path: String) -> [[Int32]] {
        (value(path) as! [[NSNumber]]).map { $0.map { Int32(truncating: $0) } }
    }

    public func tensor(_ name: String) throws -> Tensor { try tensors.tensor(name) }
}
