// How the elementwise ops (RMSNorm, RoPE, SwiGLU, the residual adds) share their work among threads: in contiguous
// ranges, each at least big enough to pay for a thread hop, vector blocks kept whole (ranges start at multiples of 64
// elements), so that every element is computed exactly as on one thread. Decoding's single rows stay inline.
import Tensor

enum Elementwise {
    /// Elements below which one thread does the whole op (a hop costs about as much as adding this many floats).
    static let elementsPerWorker = 1 << 14

    /// Rows of `cols` elements each worker takes at least.
    static func rowsPerWorker(cols: Int) -> Int { max(1, elementsPerWorker / max(cols, 1)) }

    /// `body` over ranges covering 0..<count on `parallelism`'s threads.
    static func split(_ count: Int, _ parallelism: Parallelism, _ body: (Range<Int>) -> Void) {
        parallelism.ranges(count, granularity: 64, minimumPerWorker: elementsPerWorker, body)
    }
}
