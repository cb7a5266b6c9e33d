// A resumable training checkpoint: OUT/checkpoints/step-N/ holding the trainable values
// (trainable.safetensors, by name), AdamW's moments (optimizer.safetensors: NAME.exp_avg, NAME.exp_avg_sq, and
// the step count in its metadata) and the loop's own state (state.json: step, data position, RNG, the resolved
// configuration). Written into a temporary directory, flushed to disk and renamed, so that a kill at any moment
// leaves either the complete checkpoint or none.
import Checkpoint
import Foundation
import Support
import Tensor

/// Saving, finding and loading training checkpoints.
public enum TrainingCheckpoint {
    /// The directory of step `step` under `root` (OUT/checkpoints).
    public static func directory(step: Int, in root: URL) -> URL {
        root.appendingPathComponent("step-\(step)")
    }

    /// Writes step `step`'s checkpoint under `root`, then keeps only the newest `keep` (nil: all) and the steps
    /// in `protecting` (the best one so far, say).
    public static func save<State: Encodable>(step: Int, trainable: TrainableSet, optimizer: AdamW, state: State,
                                              in root: URL, keep: Int?, protecting: Set<Int> = []) throws {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let dir = directory(step: step, in: root)
        try AtomicDirectory.write(dir, replacing: true, durable: true) { tmp in
            let values = trainable.parameters.map { SafetensorsItem(name: $0.name, tensor: $0.value) }
            try SafetensorsWriter.write(values, metadata: ["prune": "training checkpoint"],
                                        to: tmp.appendingPathComponent("trainable.safetensors"), durable: true)
            var moments: [SafetensorsItem] = []
            for p in trainable.parameters {
                moments.append(SafetensorsItem(name: p.name + ".exp_avg", tensor: optimizer.firstMoments.view(offset: p.offset, shape: p.value.shape)))
                moments.append(SafetensorsItem(name: p.name + ".exp_avg_sq", tensor: optimizer.secondMoments.view(offset: p.offset, shape: p.value.shape)))
            }
            try SafetensorsWriter.write(moments, metadata: ["step": "\(optimizer.stepCount)"],
                                        to: tmp.appendingPathComponent("optimizer.safetensors"), durable: true)
            try AtomicFile.write(try JSONEncoder.sorted.encode(state), to: tmp.appendingPathComponent("state.json"), durable: true)
        }
        if let keep {
            for (s, old) in list(in: root).dropLast(max(keep, 1)) where !protecting.contains(s) {
                try? discard(old)
            }
        }
    }

    /// Removes a checkpoint directory so that no half-deleted step-N is ever visible: it is first renamed to a
    /// hidden temporary name (atomic), then deleted file by file.
    static func discard(_ dir: URL) throws {
        let hidden = AtomicFile.temporarySibling(of: dir)
        guard rename(dir.path, hidden.path) == 0 else {
            throw PruneError(file: dir, "cannot move the old checkpoint aside (\(String(cString: strerror(errno))))")
        }
        AtomicFile.syncDirectory(dir.deletingLastPathComponent())
        try FileManager.default.removeItem(at: hidden)
    }

    /// Complete checkpoints under `root`, oldest first (temporary leftovers of a killed write are ignored).
    public static func list(in root: URL) -> [(step: Int, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.compactMap { name -> (Int, URL)? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)) else { return nil }
            let url = root.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent("state.json").path) else { return nil }
            return (step, url)
        }.sorted { $0.0 < $1.0 }
    }

    /// Loads the checkpoint at `dir` into `trainable` and `optimizer` and returns its state. Every tensor must be
    /// there with its shape: a checkpoint of another configuration is refused naming what differs.
    public static func load<State: Decodable>(_ type: State.Type, from dir: URL, into trainable: TrainableSet,
                                              optimizer: AdamW) throws -> State {
        let stateURL = dir.appendingPathComponent("state.json")
        guard let data = FileManager.default.contents(atPath: stateURL.path) else { throw PruneError(file: stateURL, "missing") }
        let state = try JSONFile.decode(State.self, from: data, file: stateURL, kind: "a training state")
        let values = try SafetensorsFile(url: dir.appendingPathComponent("trainable.safetensors"))
        let moments = try SafetensorsFile(url: dir.appendingPathComponent("optimizer.safetensors"))
        let m = Tensor(zeros: [optimizer.firstMoments.count]), v = Tensor(zeros: [optimizer.secondMoments.count])
        func read(_ file: SafetensorsFile, _ name: String, _ shape: [Int]) throws -> Tensor {
            guard let entry = file.entryByName[name] else { throw PruneError(file: file.url, "no tensor \"\(name)\"") }
            guard entry.shape == shape else {
                throw PruneError(file: file.url, "\"\(name)\" has shape \(entry.shape), this run's is \(shape)")
            }
            return try file.tensor(name)
        }
        for p in trainable.parameters {
            let value = try read(values, p.name, p.value.shape)
            p.value.data.update(from: value.data, count: value.count)
            let a = try read(moments, p.name + ".exp_avg", p.value.shape), b = try read(moments, p.name + ".exp_avg_sq", p.value.shape)
            (m.data + p.offset).update(from: a.data, count: a.count)
            (v.data + p.offset).update(from: b.data, count: b.count)
        }
        if values.entries.count != trainable.parameters.count {
            throw PruneError(file: values.url, "holds \(values.entries.count) tensors, this run trains \(trainable.parameters.count)")
        }
        guard let steps = moments.metadata["step"].flatMap(Int.init) else { throw PruneError(file: moments.url, "no step count") }
        optimizer.restore(stepCount: steps, firstMoments: m.data, secondMoments: v.data)
        return state
    }
}
