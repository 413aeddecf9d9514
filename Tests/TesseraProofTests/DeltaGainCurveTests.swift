import Foundation
import Testing
@testable import TesseraBenchmarks
@testable import TesseraEngine
@testable import TesseraLibrary
@testable import TesseraProof
import TesseraCore
import TesseraTestSupport

@Suite struct DeltaGainCurveTests {
    /// On a trained bundle: the lossless row keeps the whole gain, a lossy row keeps what its
    /// decoded delta gives (checked against evaluating that delta directly), sizes are the
    /// files', and the library is left as it was.
    @Test func theCurveMeasuresWhatValidatorsWouldJudge() throws {
        let s = try ValidatorTests.setup()
        let bundle = try ValidatorTests.contribute(s, name: "curve", data: ProofFixture.windows(ProofFixture.domain, count: 40, seed: 1))
        let manifest = FileManager.default.contents(atPath: s.f.library.manifestPath)
        let settings = [DeltaOptions(encoding: .lowRank, rank: 1, factorBits: 4), DeltaOptions(encoding: .sparse, density: 1.0 / 8),
                        DeltaOptions(encoding: .lossless)]
        let curve = try DeltaGainCurve.run(library: s.f.library, bundle: bundle, heldOut: s.held, background: s.background, settings: settings)
        #expect(curve.updatedHeldOutLoss < curve.baseHeldOutLoss)
        #expect(curve.rows.count == 3 && curve.rows.allSatisfy { $0.bytes > 0 && $0.backgroundRegression != nil })
        #expect(abs(curve.rows[2].gainKept - 1) < 1e-9, "\(curve.rows[2])")
        #expect(curve.rows[0].gainKept < 1 && curve.rows[0].ratio > curve.rows[2].ratio)
        // The low-rank row against a model given the decoded low-rank delta directly.
        let model = try s.f.library.loadModel()
        let scratch = TemporaryDirectory()
        for item in try SubmissionBundle.verify(bundle, library: s.f.library).items {
            let new = try s.f.library.decodeDelta((bundle as NSString).appendingPathComponent(item.file)).weights
            let path = scratch.sub("\(item.expert.layer)-\(item.expert.expert).safetensors")
            _ = try s.f.library.encodeDelta(item.expert, new: new, options: settings[0], to: path)
            try s.f.library.setExpert(item.expert, try s.f.library.decodeDelta(path).weights, in: model)
        }
        let losses = try windowLosses(model: model, windows: s.held)
        #expect(abs(losses.reduce(0, +) / Double(losses.count) - curve.rows[0].heldOutLoss) < 1e-12)
        #expect(FileManager.default.contents(atPath: s.f.library.manifestPath) == manifest)
    }
}
