// Central-difference gradient checks for Float32 ops: the loss is accumulated in Double, each element is
// nudged by ±ε (the step actually taken after rounding to Float is used), and the worst disagreement is
// reported relative to the largest analytic gradient.
import Foundation
import Llama
import Support
import Tensor
import TestSupport
import XCTest

enum GradientCheck {
    /// Seeded uniform values in [−scale, scale).
    static func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float.random(in: -scale..<scale, using: &rng) }
    }

    /// A seeded tensor.
    static func tensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        Tensor(shape: shape, values: random(shape.reduce(1, *), seed: seed, scale: scale))
    }

    /// Σ w·y in Double: a loss whose gradient with respect to y is w.
    static func dot(_ w: [Float], _ y: UnsafePointer<Float>) -> Double {
        var s = 0.0
        for i in w.indices { s += Double(w[i]) * Double(y[i]) }
        return s
    }

    /// max |finite difference − analytic| / max |analytic| over every element of `parameter`.
    static func relativeError(parameter p: UnsafeMutablePointer<Float>, count: Int, analytic: UnsafePointer<Float>,
                              epsilon: Float = 1e-2, loss: () -> Double) -> Double {
        var worst = 0.0, scale = 0.0
        for i in 0..<count { scale = max(scale, Double(abs(analytic[i]))) }
        for i in 0..<count {
            let original = p[i]
            p[i] = original + epsilon
            let up = Double(p[i]) - Double(original)
            let lPlus = loss()
            p[i] = original - epsilon
            let down = Double(original) - Double(p[i])
            let lMinus = loss()
            p[i] = original
            let fd = (lPlus - lMinus) / (up + down)
            worst = max(worst, abs(fd - Double(analytic[i])))
        }
        return worst / max(scale, 1e-12)
    }

    /// Asserts that the relative error is within `tolerance` (and that the gradient is not trivially zero).
    static func assertClose(_ name: String, parameter: UnsafeMutablePointer<Float>, count: Int, analytic: UnsafePointer<Float>,
                            epsilon: Float = 1e-2, tolerance: Double = Tolerance.gradientCheckOp, loss: () -> Double,
                            file: StaticString = #filePath, line: UInt = #line) {
        var maxAnalytic: Float = 0
        for i in 0..<count { maxAnalytic = max(maxAnalytic, abs(analytic[i])) }
        XCTAssertGreaterThan(maxAnalytic, 0, "\(name): analytic gradient is all zero", file: file, line: line)
        let err = relativeError(parameter: parameter, count: count, analytic: analytic, epsilon: epsilon, loss: loss)
        assertPinned("gradcheck", err, within: tolerance, "\(name), finite differences", file: file, line: line)
    }
}
