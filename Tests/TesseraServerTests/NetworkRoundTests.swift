import Foundation
import Testing
import TesseraClient
import TesseraCore
import TesseraLedger
import TesseraMarket
import TesseraTestSupport

/// One live round on loopback: `tessera serve`, two `tessera contribute`, the copier and
/// two `tessera validator run` are separate processes of the built binary that know only
/// the server's URL. Every decision and figure must be the in-process demo's.
@Suite(.serialized) struct NetworkRoundTests {
    @Test func aRoundPlayedBySeparateProcessesDecidesAsTheInProcessRound() async throws {
        guard tesseraIsBuilt() else { return }
        let tmp = TemporaryDirectory("network-round")
        let local = try await Demo.run(try TinyDemo.prepare(in: tmp.sub("local"))) { _ in }
        let net = try await NetworkDemo.run(try TinyDemo.prepare(in: tmp.sub("net")), binary: ReferenceFixtures.binary,
                                            connect: Markets.open) { _ in }

        #expect(net.verify.ok && net.payoutSumMinorUnits == net.revenueMinorUnits)
        #expect(net.submissions.count == local.submissions.count)
        for (n, l) in zip(net.submissions, local.submissions) {
            #expect(n.contributor == l.contributor && n.experts == l.experts && n.deltaBytes == l.deltaBytes, "\(n.contributor)")
            #expect(n.state == l.state && n.unitsEarned == l.unitsEarned && n.consensusGainMicronatsPerToken == l.consensusGainMicronatsPerToken,
                    "\(n.contributor): \(n.state) \(n.unitsEarned) vs \(l.state) \(l.unitsEarned)")
            for (a, b) in zip(n.verdicts, l.verdicts) {
                #expect(a.validator == b.validator && a.accept == b.accept && a.reason == b.reason, "\(n.contributor) \(a.validator): \(a.reason) vs \(b.reason)")
                #expect(a.gainLCBMicronatsPerToken == b.gainLCBMicronatsPerToken && a.regressionUCBMicronatsPerToken == b.regressionUCBMicronatsPerToken)
                #expect(a.maxCosine == b.maxCosine)
            }
        }
        #expect(net.submissions.last?.state == "rejected", "the copier is caught over the network too")
        #expect(net.heldOutLossBeforeNatsPerToken == local.heldOutLossBeforeNatsPerToken)
        #expect(net.heldOutLossAfterNatsPerToken == local.heldOutLossAfterNatsPerToken)
        #expect(net.shares.map(\.expert) == local.shares.map(\.expert))

        // The kept market serves again and verifies from a client that trusts only the chain.
        let server = try await ServerProcess.start(binary: ReferenceFixtures.binary, market: net.market, logPath: tmp.sub("again.log"))
        do {
            let remote = try RemoteMarket(url: server.url)
            #expect(try await remote.verify().ok)
            let state = try await remote.state()
            #expect(state.headHash == (try await remote.summary().headHash))
            #expect(state.submissions.count == 3)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}
