import Foundation
import TesseraCore

/// AdamW as torch.optim.AdamW computes it: decoupled weight decay applied first
/// (θ ← θ·(1 − lr·λ)), then the bias-corrected Adam step θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε).
/// State covers only the views it was made for, so a sparse update keeps moments for
/// the trainable experts alone.
public final class AdamW: @unchecked Sendable {
    public struct Hyperparameters: Sendable, Codable, Equatable {
        public var learningRate: Float
        public var beta1: Float
        public var beta2: Float
        public var epsilon: Float
        public var weightDecay: Float
        public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
            self.learningRate = learningRate
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }
    }

    public var hyper: Hyperparameters
    public private(set) var step = 0
    public let views: [ParamView]
    let m: FloatBuffer
    let v: FloatBuffer
    let stateOffsets: [Int]

    public init(views: [ParamView], hyper: Hyperparameters = Hyperparameters()) {
        self.views = views
        self.hyper = hyper
        var offsets: [Int] = []
        var total = 0
        for view in views {
            offsets.append(total)
            total += view.count
        }
        stateOffsets = offsets
        m = FloatBuffer(count: total)
        v = FloatBuffer(count: total)
    }

    /// First and second moments, concatenated in the order of `views` (for checkpoints).
    public var firstMoments: FloatBuffer { m }
    public var secondMoments: FloatBuffer { v }
    public var stateCount: Int { m.count }

    /// Restores the moments and step count a checkpoint saved.
    public func restore(step: Int, firstMoments m1: [Float], secondMoments m2: [Float]) throws {
        try m1.withUnsafeBytes { a in try m2.withUnsafeBytes { b in try restore(step: step, firstMoments: a, secondMoments: b) } }
    }

    /// The same from little-endian float32 bytes (a mapped checkpoint), without a copy.
    public func restore(step: Int, firstMoments m1: UnsafeRawBufferPointer, secondMoments m2: UnsafeRawBufferPointer) throws {
        let stride = MemoryLayout<Float>.stride
        guard step >= 0, m1.count == m.count * stride, m2.count == v.count * stride else {
            throw EngineError.invalidInput("optimizer state holds \(m1.count / stride)/\(m2.count / stride) moments at step \(step), expected \(m.count) each")
        }
        self.step = step
        if m.count > 0 {
            UnsafeMutableRawPointer(m.pointer).copyMemory(from: m1.baseAddress!, byteCount: m1.count)
            UnsafeMutableRawPointer(v.pointer).copyMemory(from: m2.baseAddress!, byteCount: m2.count)
        }
    }

    /// Applies one update to `params` from `grads` (both laid out like the model's
    /// parameters); `learningRate` overrides the configured rate for this step (schedules).
    public func update(params: FloatBuffer, grads: FloatBuffer, learningRate: Float? = nil) {
        step += 1
        let lr = learningRate ?? hyper.learningRate
        let b1 = hyper.beta1, b2 = hyper.beta2, eps = hyper.epsilon
        let decay = 1 - lr * hyper.weightDecay
        let bc1 = 1 - Float(pow(Double(b1), Double(step)))
        let bc2sqrt = Float((1 - pow(Double(b2), Double(step))).squareRoot())
        let stepSize = lr / bc1
        let P = params.pointer, G = grads.pointer, M = m.pointer, Vv = v.pointer
        for (view, s) in zip(views, stateOffsets) {
            let p = P + view.offset, g = G + view.offset, mm = M + s, vv = Vv + s
            Parallel.ranges(view.count, granule: 256, work: view.count * 8) { range in
                for i in range {
                    let gi = g[i]
                    p[i] *= decay
                    mm[i] += (gi - mm[i]) * (1 - b1)
                    vv[i] = vv[i] * b2 + (1 - b2) * gi * gi
                    let denom = vv[i].squareRoot() / bc2sqrt + eps
                    p[i] -= stepSize * mm[i] / denom
                }
            }
        }
    }
}

/// Scales the gradients of `views` so their global L2 norm is at most `maxNorm`, as
/// torch.nn.utils.clip_grad_norm_ does (coefficient maxNorm / (norm + 1e-6), capped at 1).
/// Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ grads: FloatBuffer, views: [ParamView], maxNorm: Float) -> Double {
    let G = grads.pointer
    var sum: Double = 0
    for view in views {
        // Fixed 4096-element chunks summed in order: the same figure for any worker count.
        let chunk = 4096
        let chunks = (view.count + chunk - 1) / chunk
        let partial = FloatBuffer(count: chunks)
        let g = G + view.offset, pp = partial.pointer
        Parallel.ranges(chunks, work: view.count * 4) { range in
            for c in range {
                let lo = c * chunk
                pp[c] = dot(g + lo, g + lo, min(chunk, view.count - lo))
            }
        }
        for c in 0..<chunks { sum += Double(pp[c]) }
    }
    let norm = sum.squareRoot()
    let coef = Double(maxNorm) / (norm + 1e-6)
    if coef < 1 {
        let c = Float(coef)
        for view in views {
            let g = G + view.offset
            Parallel.ranges(view.count, granule: 1024, work: view.count * 2) { range in
                for i in range { g[i] *= c }
            }
        }
    }
    return norm
}

extension TrainableSet {
    /// The parameter views an optimizer updates: whole tensors, or with an expert filter,
    /// only the chosen experts' slices of fused tensors.
    public func views(in layout: WeightLayout) -> [ParamView] {
        var out: [ParamView] = []
        var covered = Set<Int>()
        if let filter = expertFilter {
            for id in filter.sorted() {
                let e = layout.layers[id.layer].experts[id.expert]
                for v in e.all where tensors.contains(v.tensor) {
                    out.append(v)
                    covered.insert(v.tensor)
                }
            }
        }
        for i in tensors.sorted() where !covered.contains(i) {
            let s = layout.tensors[i]
            out.append(ParamView(offset: s.offset, count: s.count, tensor: i))
        }
        return out
    }
}
