import Foundation
import HummingbirdTesting
import Testing
import TesseraMarket
@testable import TesseraServer
import TesseraTestSupport

/// A server and its market are freed once nothing uses them: no reference cycle keeps a
/// market (its ledger, database connections and library) alive after its server is gone.
@Suite struct ServerLifetimeTests {
    @Test func aServerAndItsMarketAreFreedAfterUse() async throws {
        weak var weakServer: MarketServer?
        weak var weakMarket: LocalMarket?
        do {
            let m = try TestMarket()
            let server = RouterTests.server(m)
            weakServer = server
            weakMarket = m.market
            try await server.buildApplication().test(.router) { client in
                try await client.execute(uri: "/v1/market", method: .get) { #expect($0.status == .ok) }
            }
        }
        #expect(weakServer == nil, "the server outlived its last use")
        #expect(weakMarket == nil, "the market outlived its server")
    }
}
