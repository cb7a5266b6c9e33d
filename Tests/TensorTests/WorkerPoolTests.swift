// The decoding worker pool runs every part exactly once, on up to its threads, back to back and after its
// workers have gone to sleep; fewer parts than threads leave the rest idle.
import Foundation
import Tensor
import XCTest

final class WorkerPoolTests: XCTestCase {
    func testEveryPartRunsOnceAwakeAndAfterSleeping() {
        for threads in [1, 2, 3] {
            let pool = WorkerPool.shared(Parallelism(threads: threads))
            XCTAssertEqual(pool.threads, threads)
            for round in 0..<300 {
                let parts = 1 + round % threads
                let counts = UnsafeMutablePointer<Int>.allocate(capacity: threads)
                counts.initialize(repeating: 0, count: threads)
                pool.run(parts: parts) { part in counts[part] += 1 }
                XCTAssertEqual((0..<threads).map { counts[$0] }, (0..<threads).map { $0 < parts ? 1 : 0 }, "round \(round)")
                counts.deallocate()
                if round % 100 == 99 { usleep(5_000) }   // past the spin: the workers sleep, and must wake
            }
        }
        XCTAssertTrue(WorkerPool.shared(Parallelism(threads: 2)) === WorkerPool.shared(Parallelism(threads: 2)))
    }

    func testTheReadBandwidthIsMeasured() {
        let rate = ReadBandwidth.measure(bytes: 1 << 24, passes: 1, parallelism: Parallelism(threads: 2))
        XCTAssertGreaterThan(rate, 1e8, "a streaming read of 16 MB should pass 100 MB/s")
    }
}
