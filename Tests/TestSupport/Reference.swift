// The transformers/PEFT reference for stories260K: reference.json (inputs, scalars, tolerances) and
// reference.safetensors (tensors).
import Checkpoint
import Foundation
import Tensor

/// Ground truth computed by transformers in float64 on ../shared/models/stories260K.
public final class Reference {
    public let json: [String: Any]
    public let tensors: SafetensorsFile
    public let modelDirectory: URL

    public init(model: String = "stories260K") throws {
        let dir = Fixtures.shared.appendingPathComponent("reference/\(model)")
        let data = try Data(contentsOf: dir.appendingPathComponent("reference.json"))
        json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        tensors = try SafetensorsFile(url: dir.appendingPathComponent("reference.safetensors"))
        modelDirectory = Fixtures.shared.appendingPathComponent("models/\(model)")
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
