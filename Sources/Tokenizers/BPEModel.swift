// The BPE model of a byte-level tokenizer.json: vocabulary, merge ranks, and the merge loop that
// turns one pre-token (a "word", as UTF-8 bytes) into ids. Mirrors the tokenizers library's
// `Word::merge_all`: a priority queue of candidate pairs ordered by (rank, position), stale entries
// skipped, so a word of n bytes costs O(n log n) instead of a rescan per merge.
import Foundation
import Support

extension BPETokenizer {
    /// Vocabulary + merges, with a per-word cache (the same words recur constantly in text).
    final class Model {
        /// A merge: its priority (the line number in `merges`) and the id it produces.
        struct Merge {
            var rank: Int32
            var newID: Int32
        }

        /// Token spelling (byte-level characters) → id.
        let idOfToken: [String: Int32]
        /// Id of each single byte's token, or -1 where the vocabulary lacks it.
        let idOfByte: [Int32]
        /// (left id, right id) packed as left << 32 | right → merge.
        let merges: [UInt64: Merge]
        /// Llama-3's `ignore_merges`: a word that is itself a token is emitted whole.
        let ignoreMerges: Bool
        let unknownID: Int32?
        let fuseUnknown: Bool
        let byteFallback: Bool

        private var cache: [[UInt8]: [Int32]] = [:]
        private let cacheLock = NSLock()
        /// Bounds memory on huge, diverse inputs; the working set of real text is far smaller.
        private let cacheCapacity = 1 << 17

        /// Builds the model from the `model` object of tokenizer.json (type already checked to be BPE).
        init(json: [String: Any], file: URL) throws {
            guard let vocab = json["vocab"] as? [String: Any] else {
                throw PruneError(file: file, "model.vocab is missing or not an object")
            }
            var idOfToken: [String: Int32] = [:]
            idOfToken.reserveCapacity(vocab.count)
            for (token, value) in vocab {
                guard let id = (value as? NSNumber)?.int32Value else {
                    throw PruneError(file: file, "model.vocab entry \"\(token)\" has no integer id")
                }
                idOfToken[token] = id
            }
            self.idOfToken = idOfToken
            idOfByte = ByteLevel.scalarOfByte.map { idOfToken[String($0)] ?? -1 }

            for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
                if let affix = json[key] as? String, !affix.isEmpty {
                    throw PruneError(file: file, "BPE \(key) \"\(affix)\" is not supported")
                }
            }
            if let dropout = (json["dropout"] as? NSNumber)?.doubleValue, dropout > 0 {
                throw PruneError(file: file, "BPE dropout \(dropout) is not supported (inference only)")
            }
            ignoreMerges = (json["ignore_merges"] as? Bool) ?? false
            fuseUnknown = (json["fuse_unk"] as? Bool) ?? false
            byteFallback = (json["byte_fallback"] as? Bool) ?? false
            if let unk = json["unk_token"] as? String {
                guard let id = idOfToken[unk] else {
                    throw PruneError(file: file, "BPE unk_token \"\(unk)\" is not in the vocabulary")
                }
                unknownID = id
            } else {
                unknownID = nil
            }

            guard let mergeList = json["merges"] as? [Any] else {
                throw PruneError(file: file, "model.merges is missing or not a list")
            }
            var merges: [UInt64: Merge] = [:]
            merges.reserveCapacity(mergeList.count)
            for (rank, entry) in mergeList.enumerated() {
                // Older files write "a b"; newer ones (tokenizers ≥ 0.20) write ["a", "b"].
                let parts: [String]
                if let line = entry as? String {
                    parts = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                } else if let pair = entry as? [Any], let strings = pair as? [String] {
                    parts = strings
                } else {
                    throw PruneError(file: file, "merge \(rank) is neither \"a b\" nor [a, b]")
                }
                guard parts.count == 2 else {
                    throw PruneError(file: file, "merge \(rank) \(parts) does not have two parts")
                }
                guard let left = idOfToken[parts[0]], let right = idOfToken[parts[1]] else {
                    throw PruneError(file: file, "merge \(rank) \(parts) uses a token missing from the vocabulary")
                }
                guard let merged = idOfToken[parts[0] + parts[1]] else {
                    throw PruneError(file: file, "merge \(rank) \(parts) makes a token missing from the vocabulary")
                }
                // A repeated pair keeps its last rank, as the tokenizers library's map does.
                merges[Self.key(left, right)] = Merge(rank: Int32(rank), newID: merged)
            }
            self.merges = merges
        }

        @inline(__always) static func key(_ left: Int32, _ right: Int32) -> UInt64 {
            UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        }

        /// Appends the ids of one pre-token (its UTF-8 bytes) to `ids`.
        func tokenize(_ word: ArraySlice<UInt8>, into ids: inout [Int32]) {
            let key = Array(word)
            cacheLock.lock()
            let cached = cache[key]
            cacheLock.unlock()
            if let cached {
                ids.append(contentsOf: cached)
                return
            }
            let result = tokenizeUncached(key)
            cacheLock.lock()
            if cache.count >= cacheCapacity { cache.removeAll(keepingCapacity: true) }
            cache[key] = result
            cacheLock.unlock()
            ids.append(contentsOf: result)
        }

        private func tokenizeUncached(_ word: [UInt8]) -> [Int32] {
            if ignoreMerges, let id = idOfToken[ByteLevel.encode(word)] { return [id] }

            // One symbol per byte (= one byte-level character), as a doubly linked list over arrays.
            var symbols: [Int32] = []
            symbols.reserveCapacity(word.count)
            var previousWasUnknown = false
            for byte in word {
                let id = idOfByte[Int(byte)]
                if id >= 0 {
                    symbols.append(id)
                    previousWasUnknown = false
                    continue
                }
                if byteFallback, let pieces = byteFallbackIDs(of: ByteLevel.scalarOfByte[Int(byte)]) {
                    symbols.append(contentsOf: pieces)
                    previousWasUnknown = false
                } else if let unknownID {
                    if !(fuseUnknown && previousWasUnknown) { symbols.append(unknownID) }
                    previousWasUnknown = true
                }
                // Without an unk token the tokenizers library drops the character; so do we.
            }
            let count = symbols.count
            if count < 2 { return symbols }

            var previous = [Int32](0..<Int32(count)).map { $0 - 1 }
            var next = [Int32](0..<Int32(count)).map { $0 + 1 }
            var alive = [Bool](repeating: true, count: count)
            var queue = MergeQueue()
            for position in 0..<(count - 1) {
                if let merge = merges[Self.key(symbols[position], symbols[position + 1])] {
                    queue.push(rank: merge.rank, position: Int32(position), newID: merge.newID)
                }
            }
            while let top = queue.pop() {
                let position = Int(top.position)
                guard alive[position], next[position] < Int32(count) else { continue }
                let right = Int(next[position])
                // Skip entries made stale by an earlier merge that changed either neighbour.
                guard let current = merges[Self.key(symbols[position], symbols[right])],
                      current.newID == top.newID else { continue }
                symbols[position] = top.newID
                alive[right] = false
                next[position] = next[right]
                if next[right] < Int32(count) { previous[Int(next[right])] = Int32(position) }
                if previous[position] >= 0 {
                    let left = Int(previous[position])
                    if let merge = merges[Self.key(symbols[left], symbols[position])] {
                        queue.push(rank: merge.rank, position: Int32(left), newID: merge.newID)
                    }
                }
                if next[position] < Int32(count) {
                    if let merge = merges[Self.key(symbols[position], symbols[Int(next[position])])] {
                        queue.push(rank: merge.rank, position: Int32(position), newID: merge.newID)
                    }
                }
            }
            var result: [Int32] = []
            result.reserveCapacity(count)
            for position in 0..<count where alive[position] { result.append(symbols[position]) }
            return result
        }

        /// `<0xNN>` ids for the UTF-8 bytes of a character, if the vocabulary has all of them.
        private func byteFallbackIDs(of scalar: Unicode.Scalar) -> [Int32]? {
            var ids: [Int32] = []
            for byte in String(scalar).utf8 {
                guard let id = idOfToken[String(format: "<0x%02X>", byte)] else { return nil }
                ids.append(id)
            }
            return ids
        }
    }

    /// A binary min-heap of merge candidates ordered by rank, then position (leftmost first).
    struct MergeQueue {
        struct Entry {
            /// rank << 32 | position, so one integer comparison gives the order.
            var order: UInt64
            var newID: Int32
            var position: Int32 { Int32(truncatingIfNeeded: order & 0xFFFF_FFFF) }
        }

        private var heap: [Entry] = []

        mutating func push(rank: Int32, position: Int32, newID: Int32) {
            heap.append(Entry(order: UInt64(UInt32(rank)) << 32 | UInt64(UInt32(position)), newID: newID))
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                if heap[parent].order <= heap[child].order { break }
                heap.swapAt(parent, child)
                child = parent
            }
        }

        mutating func pop() -> Entry? {
            guard let top = heap.first else { return nil }
            let last = heap.removeLast()
            if heap.isEmpty { return top }
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                if left >= heap.count { break }
                var smallest = left
                if left + 1 < heap.count, heap[left + 1].order < heap[left].order { smallest = left + 1 }
                if heap[parent].order <= heap[smallest].order { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
            return top
        }
    }
}
