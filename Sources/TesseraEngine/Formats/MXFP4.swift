/// MXFP4 (OCP Microscaling, E2M1 values with an E8M0 scale per 32): how released gpt-oss
/// checkpoints store their experts. A weight W [E, in, out] (the engine's layout) is stored
/// as `NAME_blocks` U8 [E, out, in/32, 16], two 4-bit codes per byte (low nibble first),
/// and `NAME_scales` U8 [E, out, in/32], the power of two biased by 127: transformers'
/// `convert_moe_packed_tensors`, which the engine follows value for value.
public enum MXFP4 {
    public static let values: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

    public static func blocksName(_ name: String) -> String { name + "_blocks" }
    public static func scalesName(_ name: String) -> String { name + "_scales" }

    /// The stored shapes of a weight of shape [E, in, out].
    public static func blocksShape(_ shape: [Int]) -> [Int] { [shape[0], shape[2], shape[1] / 32, 16] }
    public static func scalesShape(_ shape: [Int]) -> [Int] { [shape[0], shape[2], shape[1] / 32] }

    /// Decodes into `out` [E, in, out] (transposed back from the stored [E, out, in]).
    public static func decode(blocks: UnsafeRawBufferPointer, scales: UnsafeRawBufferPointer, shape: [Int],
                              into out: UnsafeMutablePointer<Float>) {
        let (experts, inputs, outputs) = (shape[0], shape[1], shape[2])
        let groups = inputs / 32
        values.withUnsafeBufferPointer { lut in
            for e in 0..<experts {
                for r in 0..<outputs {
                    for g in 0..<groups {
                        let row = (e * outputs + r) * groups + g
                        let scale = Float(sign: .plus, exponent: Int(scales[row]) - 127, significand: 1)
                        for j in 0..<16 {
                            let byte = blocks[row * 16 + j]
                            let column = g * 32 + 2 * j
                            out[(e * inputs + column) * outputs + r] = lut[Int(byte & 15)] * scale
                            out[(e * inputs + column + 1) * outputs + r] = lut[Int(byte >> 4)] * scale
                        }
                    }
                }
            }
        }
    }
}

extension MXFP4 {
    /// The shapes of one expert's slice ([in, out] in the engine's layout).
    public static func expertBlocksShape(inputs: Int, outputs: Int) -> [Int] { [outputs, inputs / 32, 16] }
    public static func expertScalesShape(inputs: Int, outputs: Int) -> [Int] { [outputs, inputs / 32] }

    /// Quantises one expert's weight `values` [in, out] the way the released gpt-oss
    /// checkpoints were made (OCP MX): per 32 inputs of an output, the shared scale is
    /// 2^(floor(log2 max|x|) − 2) clamped to 2^±127, each value becomes the nearest E2M1
    /// code, ties to the lower code. floor(log2) is taken from the float's exponent, exact
    /// where a float log2 could round up just below a power of two.
    /// Returns blocks [out, in/32, 16] and scales [out, in/32]. `inputs` is a multiple of 32.
    public static func encode(_ values: UnsafeBufferPointer<Float>, inputs: Int, outputs: Int) -> (blocks: [UInt8], scales: [UInt8]) {
        let groups = inputs / 32
        var blocks = [UInt8](repeating: 0, count: outputs * groups * 16)
        var scales = [UInt8](repeating: 0, count: outputs * groups)
        var group = [Float](repeating: 0, count: 32)
        for r in 0..<outputs {
            for g in 0..<groups {
                var amax: Float = 0
                for j in 0..<32 {
                    group[j] = values[(g * 32 + j) * outputs + r]
                    amax = max(amax, abs(group[j]))
                }
                let exponent = min(127, max(-127, Int(max(amax, Float.leastNormalMagnitude).exponent) - 2))
                let scale = Float(sign: .plus, exponent: exponent, significand: 1)
                let row = r * groups + g
                scales[row] = UInt8(exponent + 127)
                for j in 0..<16 {
                    blocks[row * 16 + j] = nearestCode(group[2 * j] / scale) | (nearestCode(group[2 * j + 1] / scale) << 4)
                }
            }
        }
        return (blocks, scales)
    }

    /// The first code of least distance, as an argmin over the table would pick it.
    static func nearestCode(_ x: Float) -> UInt8 {
        var best = 0
        var bestDistance = Float.infinity
        for (i, v) in values.enumerated() {
            let d = abs(x - v)
            if d < bestDistance { best = i; bestDistance = d }
        }
        return UInt8(best)
    }

    /// Decodes expert `e` of a whole weight's stored halves (of a weight [E, in, out]) into
    /// `out` [in, out]; returns the index of the first non-finite value, if any.
    public static func decodeExpert(_ e: Int, ofBlocks blocks: UnsafeRawBufferPointer, scales: UnsafeRawBufferPointer, shape: [Int],
                                    into out: UnsafeMutablePointer<Float>) -> Int? {
        let blockBytes = blocks.count / shape[0], scaleBytes = scales.count / shape[0]
        return decodeExpert(blocks: UnsafeRawBufferPointer(rebasing: blocks[(e * blockBytes)..<((e + 1) * blockBytes)]),
                            scales: UnsafeRawBufferPointer(rebasing: scales[(e * scaleBytes)..<((e + 1) * scaleBytes)]),
                            inputs: shape[1], outputs: shape[2], into: out)
    }

    /// Decodes one expert's slice (blocks [out, in/32, 16], scales [out, in/32]) into
    /// `out` [in, out]; returns the index of the first non-finite value, if any.
    public static func decodeExpert(blocks: UnsafeRawBufferPointer, scales: UnsafeRawBufferPointer, inputs: Int, outputs: Int,
                                    into out: UnsafeMutablePointer<Float>) -> Int? {
        decode(blocks: blocks, scales: scales, shape: [1, inputs, outputs], into: out)
        return (0..<(inputs * outputs)).first { !out[$0].isFinite }
    }
}
