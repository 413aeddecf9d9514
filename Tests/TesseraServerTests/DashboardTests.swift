import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TesseraCore
import TesseraLedger
import TesseraMarket
@testable import TesseraServer

/// The dashboard's pages through the router: each shows its key figures, escapes what
/// participants wrote, and refuses malformed keys (the browser test, scripts/dashboard-
/// browser-test, renders them in Chromium).
@Suite struct DashboardTests {
    @Test func pagesShowTheLedgersFigures() async throws {
        let m = try TestMarket("dashboard")
        let usage = m.market.library.manifest.experts.prefix(2).map {
            LedgerAction.Usage(layer: $0.layer, expert: $0.expert, version: $0.head.hash, usage: 700)
        }
        _ = try await m.market.post(try m.sign(.revenue(.init(at: m.now, domain: "es", period: "2026-12-01<b>", amount: 12_345, usage: usage)), by: "operator"))
        let publisher = m.keys["publisher"]!.publicHex, validator = m.keys["validator-1"]!.publicHex
        try await RouterTests.test(m) { client in
            func page(_ uri: String) async throws -> (HTTPResponse.Status, String) {
                try await client.execute(uri: uri, method: .get) { r in (r.status, String(buffer: r.body)) }
            }
            let (s0, market) = try await page("/")
            #expect(s0 == .ok)
            for figure in ["es-1", "Rounds", "chart-gains", "chart-revenue", "12345 minor units", "/validators/\(validator)", "/experts/0:0"] {
                #expect(market.contains(figure), "market page lacks \(figure)")
            }
            #expect(market.contains("2026-12-01&lt;b&gt;") && !market.contains("2026-12-01<b>"), "a period name is escaped")
            let (s1, expert) = try await page("/experts/0:0")
            #expect(s1 == .ok)
            for figure in ["Version lineage", "chart-shares", "/owners/\(publisher)", "100.0000%", "chart-usage", "700 units"] {
                #expect(expert.contains(figure), "expert page lacks \(figure)")
            }
            let (s2, owner) = try await page("/owners/\(publisher)")
            #expect(s2 == .ok)
            #expect(owner.contains("chart-holdings") && owner.contains("chart-payouts") && owner.contains("payouts to date"))
            let (s3, v) = try await page("/validators/\(validator)")
            #expect(s3 == .ok)
            #expect(v.contains("stake 100") && v.contains("no decided submissions yet"))
            #expect(try await page("/owners/nothex").0 == .badRequest)
            #expect(try await page("/experts/9:9").0 == .notFound)
            #expect(try await page("/experts/x").0 == .badRequest)
        }
    }
}
