// config.json of a cut checkpoint, edited as a JSON dictionary so that every key this toolkit does not
// know survives: num_hidden_layers becomes the kept count, per-layer lists (e.g. `layer_types`, one
// entry per layer) lose the removed entries, lists of layer indices are renumbered, and the dtype keys
// follow a requested conversion.
import Checkpoint
import Foundation

/// The edit of config.json for a cut.
public struct CutConfig {
    /// The edited dictionary.
    public private(set) var values: [String: Any]
    /// Keys whose values changed, sorted.
    public private(set) var editedKeys: [String] = []

    /// Applies the cut to `config`, a checkpoint of `layerCount` layers keeping `kept` (ascending), and
    /// records `dtype` in the dtype keys when the weights are converted.
    public init(_ config: [String: Any], layerCount L: Int, kept: [Int], dtype: SafetensorsDType?) {
        values = config
        var edited: Set<String> = ["num_hidden_layers"]
        // NSNumbers, as JSONSerialization makes them, so that ConfigJSON sees one kind of number.
        values["num_hidden_layers"] = NSNumber(value: kept.count)
        let newIndex = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1, $0) })
        for (key, value) in config where key != "num_hidden_layers" && key.lowercased().contains("layer") {
            guard let list = value as? [Any] else { continue }
            if list.count == L {
                // One entry per layer.
                values[key] = kept.map { list[$0] }
                edited.insert(key)
            } else if let indices = Self.layerIndices(list, below: L) {
                // Indices of layers: the removed go, the rest take their new numbers.
                values[key] = indices.compactMap { newIndex[$0].map { NSNumber(value: $0) } }
                edited.insert(key)
            }
        }
        let dtyped = CheckpointRewriter.recordingDtype(values, dtype)
        values = dtyped.values
        edited.formUnion(dtyped.edited)
        editedKeys = edited.sorted()
    }

    /// The values as layer indices when all are integers in 0…L−1, else nil.
    private static func layerIndices(_ list: [Any], below L: Int) -> [Int]? {
        var out: [Int] = []
        for item in list {
            // JSON booleans are a subclass of NSNumber (and on Linux `1 is Bool` holds): compare the class.
            guard let n = item as? NSNumber, type(of: n) == NSNumber.self,
                  let i = Int(exactly: n.doubleValue), i >= 0, i < L else { return nil }
            out.append(i)
        }
        return out.isEmpty ? nil : out
    }

    /// The file's text, as transformers lays it out.
    public func data() throws -> Data {
        try ConfigJSON.data(values)
    }
}
