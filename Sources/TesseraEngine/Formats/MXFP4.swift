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
