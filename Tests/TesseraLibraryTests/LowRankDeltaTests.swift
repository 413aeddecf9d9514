import Foundation
import Testing
@testable import TesseraEngine
@testable import TesseraLibrary
import TesseraCore
import TesseraTestSupport

@Suite struct LowRankDeltaTests {
    static func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float(rng.normal()) * scale }
    }

    static func relativeError(_ x: [Float], _ y: [Float]) -> Double {
        let err = zip(x, y).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        let ref = y.reduce(0.0) { $0 + Double($1) * Double($1) }
        return (err / ref).squareRoot()
    }

    /// A matrix of rank 3 comes back within the factors' rounding at rank 3; on a full-rank
    /// matrix the error falls as components are added; 4-bit codes pack and unpack exactly.
    @Test func lowRankCodecRecoversLowRankMatricesAndImprovesWithRank() throws {
        let (m, n) = (24, 40)
        let u = Self.random(m * 3, seed: 1), v = Self.random(3 * n, seed: 2)
        var exact = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for k in 0..<3 { exact[i * n + j] += u[i * 3 + k] * v[k * n + j] } } }
        for (bits, tolerance) in [(8, 0.02), (4, 0.3)] {
            let payload = LowRankCodec.encode(exact, m: m, n: n, rank: 3, bits: bits)
            #expect(payload.count == LowRankCodec.payloadSize(m: m, n: n, rank: 3, bits: bits))
            let back = try LowRankCodec.decode(payload, m: m, n: n, rank: 3, bits: bits, what: "t")
            #expect(Self.relativeError(back, exact) < tolerance, "\(bits) bits: \(Self.relativeError(back, exact))")
        }
        let noise = Self.random(m * n, seed: 3)
        var last = 1.0
        for rank in [1, 2, 4, 8, 16] {
            let back = try LowRankCodec.decode(LowRankCodec.encode(noise, m: m, n: n, rank: rank, bits: 8), m: m, n: n, rank: rank, bits: 8, what: "t")
            let e = Self.relativeError(back, noise)
            #expect(e < last, "rank \(rank): \(e) after \(last)")
            last = e
        }
        let codes: [Int8] = [-7, -1, 0, 1, 7, 3, -4]
        var packed: [UInt8] = []
        LowRankCodec.pack(codes, bits: 4, into: &packed)
        var at = 0
        #expect(packed.count == 4 && LowRankCodec.unpack(packed, from: &at, count: codes.count, bits: 4) == codes && at == 4)
        #expect { try LowRankCodec.decode([0, 0, 192, 127] + [UInt8](repeating: 0, count: 4 + 24 + 40), m: m, n: n, rank: 1, bits: 8, what: "t") } throws: {
            "\($0)".contains("not finite")
        }
        #expect(LowRankCodec.payloadSize(m: Int.max / 2, n: 3, rank: 4, bits: 8) == nil)
    }

    /// Through the library: a low-rank delta applies to what the encoder decoded, carries
    /// its error-feedback residual, and a description declaring a rank or bits it cannot
    /// hold is refused by name.
    @Test func lowRankDeltasApplyAndHostileDescriptionsAreRefused() throws {
        let s = TemporaryDirectory()
        let id = ExpertID(layer: 0, expert: 1)
        let lib = try DeltaTests.setUp("mixtral-tiny", id, scratch: s)
        let new = try lib.expertWeights(id, fromCheckpoint: s.sub("tuned"))
        let options = DeltaOptions(encoding: .lowRank, rank: 2, factorBits: 4)
        let (header, stats) = try lib.encodeDelta(id, new: new, options: options, to: s.sub("d.safetensors"), residualOut: s.sub("r.safetensors"))
        #expect(header.encoding == .lowRank && header.tensors.allSatisfy { $0.rank == 2 && $0.bits == 4 })
        #expect(stats.relativeL2 > 0 && stats.relativeL2 < 1)
        let residual = try SafetensorsFile(path: s.sub("r.safetensors"))
        #expect(Set(residual.names) == Set(header.tensors.map(\.name)))
        let (_, decoded) = try lib.decodeDelta(s.sub("d.safetensors"))
        let hash = try lib.applyDelta(s.sub("d.safetensors"), producedBy: [])
        let (_, applied) = try lib.expertWeights(id, version: hash)
        for t in decoded.tensors { #expect(applied.values(t.name) == t.values) }

        let original = try Data(contentsOf: URL(fileURLWithPath: s.sub("d.safetensors")))
        for (pattern, replacement, fragment) in [(#""rank":2"#, #""rank":0"#, "valid rank"), (#""rank":2"#, #""rank":100000"#, "valid rank"),
                                                  (#""bits":4"#, #""bits":5"#, "valid rank"), (#""bits":4"#, #""bits":8"#, "payload bytes"),
                                                  (#""rank":2,"#, "", "valid rank")] {
            let path = s.sub("bad.safetensors")
            try DeltaTests.rewritingDeltaDescription(original, pattern: pattern, with: replacement).write(to: URL(fileURLWithPath: path))
            #expect { _ = try DeltaCodec.read(path) } throws: { error in "\(error)".contains(fragment) || { print("got: \(error)"); return false }() }
        }
        #expect(DeltaOptions(encoding: .lowRank, rank: 0).problem != nil && DeltaOptions(encoding: .lowRank, factorBits: 2).problem != nil)
    }
}
