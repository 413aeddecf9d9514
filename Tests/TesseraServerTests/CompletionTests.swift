import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TesseraCore
import TesseraLedger
import TesseraMarket
import TesseraProof
@testable import TesseraServer

/// POST /v1/completions end to end: API keys, OpenAI's shapes and errors, the same text
/// as `tessera generate` at temperature 0, streaming, durable metering, receipts, the
/// audit catching an inflated meter, and settlement paying out exactly the metered prices.
@Suite struct CompletionTests {
    static func setUp() throws -> (TestMarket, String, CompletionService) {
        let m = try TestMarket("completions")
        let secretFile = m.tmp.sub("api-key")
        _ = try APIKeys.issue(market: m.dir, domain: "es", pricePer1kTokens: 1500, at: m.now, out: secretFile)
        let secret = try String(contentsOfFile: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        // The meter's clock runs a day behind, so the requests' period has ended when the test settles it.
        return (m, secret, try CompletionService(market: m.market, serverKey: ParticipantKey.generate(),
                                                 now: { Int64(Date().timeIntervalSince1970) - 86_400 }))
    }

    static func post(_ client: any TestClientProtocol, _ body: String, key: String?) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let key { headers[.authorization] = "Bearer \(key)" }
        return try await client.execute(uri: "/v1/completions", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    static func json(_ r: TestResponse) throws -> JSONValue { try JSONValue.parse(Data(r.body.readableBytesView)) }

    @Test func completesMetersAndSettles() async throws {
        let (m, secret, service) = try Self.setUp()
        let expected = try TextGenerator(served: try ServedModel.load(m.market.library.directory))
            .complete(TextRequest(prompt: "0123", maxTokens: 12))
        try await RouterTests.test(m, configure: { $0.completions = service }) { client in
            // Errors in OpenAI's shape.
            let unauthorized = try await Self.post(client, #"{"prompt":"0"}"#, key: nil)
            #expect(unauthorized.status == .unauthorized)
            #expect(try Self.json(unauthorized)["error"]?["code"]?.stringValue == "invalid_api_key")
            #expect(try await Self.post(client, #"{"prompt":"0"}"#, key: "tsk-" + String(repeating: "0", count: 64)).status == .unauthorized)
            for (body, param) in [(#"{"max_tokens":3}"#, "prompt"), (#"{"prompt":"0","temperature":5}"#, "temperature"),
                                  (#"{"prompt":"0","max_tokens":0}"#, "max_tokens"), (#"{"prompt":"0","n":2}"#, "n"), ("[1]", "body")] {
                let r = try await Self.post(client, body, key: secret)
                #expect(r.status == .badRequest, "\(body)")
                #expect(try Self.json(r)["error"]?["param"]?.stringValue == param, "\(body)")
                #expect(try Self.json(r)["error"]?["type"]?.stringValue == "invalid_request_error")
            }
            // The operator registers a key by its hash over the API; nobody else can.
            let (second, hash) = APIKeys.makeSecret()
            func register(_ signer: String, domain: String = "es", forge: Bool = false) async throws -> HTTPResponse.Status {
                let k = m.keys[signer]!
                var sig = try k.sign(APIKeys.signedBytes(domain: domain, hash: hash))
                if forge { sig[0] ^= 1 }
                let headers: HTTPFields = [HTTPField.Name("Tessera-Key")!: k.publicHex, HTTPField.Name("Tessera-Signature")!: Hex.encode(sig)]
                return try await client.execute(uri: "/v1/api-keys/\(hash)?domain=\(domain)", method: .put, headers: headers) { $0.status }
            }
            #expect(try await register("stranger") == .forbidden)
            #expect(try await register("operator", forge: true) == .unauthorized)
            #expect(try await register("operator", domain: "nowhere") == .badRequest)
            #expect(try await Self.post(client, #"{"prompt":"0","max_tokens":1}"#, key: second).status == .unauthorized)
            #expect(try await register("operator") == .created)
            #expect(try await Self.post(client, #"{"prompt":"0","max_tokens":1}"#, key: second).status == .ok)

            // A body past the cap.
            let huge = try await Self.post(client, #"{"prompt":""# + String(repeating: "0", count: 2 << 20) + #""}"#, key: secret)
            #expect(huge.status == .contentTooLarge)
            #expect(try Self.json(huge)["error"]?["code"]?.stringValue == "request_too_large")

            // A byte the 64-token vocabulary does not have.
            #expect(try await Self.post(client, #"{"prompt":"z"}"#, key: secret).status == .badRequest)

            // Temperature 0: the text tessera generate gives.
            let r = try await Self.post(client, #"{"prompt":"0123","max_tokens":12,"temperature":0}"#, key: secret)
            #expect(r.status == .ok)
            let body = try Self.json(r)
            #expect(body["object"]?.stringValue == "text_completion")
            #expect(body["choices"]?.arrayValue?.first?["text"]?.stringValue == expected.text)
            #expect(body["usage"]?["prompt_tokens"]?.intValue == 4)
            #expect(body["usage"]?["completion_tokens"]?.intValue == expected.tokens.count)
            #expect(body["tessera"]?["price"]?.intValue == Int(MeterRecord.price(tokens: 4 + expected.tokens.count, pricePer1k: 1500)!))

            // Streamed: the same text in pieces, usage in the last chunk, then [DONE].
            let s = try await Self.post(client, #"{"prompt":"0123","max_tokens":12,"temperature":0,"stream":true}"#, key: secret)
            #expect(s.status == .ok)
            let events = String(buffer: s.body).components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.last == "data: [DONE]")
            var text = ""
            for e in events.dropLast() {
                let chunk = try JSONValue.parse(String(e.dropFirst("data: ".count)))
                text += chunk["choices"]?.arrayValue?.first?["text"]?.stringValue ?? ""
            }
            #expect(text == expected.text)

            // The same versions named explicitly: the same text; a version the library lacks: 400.
            let head = m.market.library.manifest.experts[0]
            let named = try await Self.post(client, #"{"prompt":"0123","max_tokens":12,"temperature":0,"tessera_versions":["\#(head.layer):\#(head.expert)=\#(head.head.hash)"]}"#, key: secret)
            #expect(named.status == .ok)
            #expect(try Self.json(named)["choices"]?.arrayValue?.first?["text"]?.stringValue == expected.text)
            let unknown = try await Self.post(client, #"{"prompt":"0","tessera_versions":["0:0=\#(String(repeating: "e", count: 64))"]}"#, key: secret)
            #expect(unknown.status == .badRequest)
            #expect(try Self.json(unknown)["error"]?["param"]?.stringValue == "tessera_versions")

            // Sampled with a seed, and a stop string.
            #expect(try await Self.post(client, #"{"prompt":"01","max_tokens":9,"temperature":0.8,"top_p":0.9,"seed":42,"stop":["zz"]}"#, key: secret).status == .ok)
        }

        // Three requests metered, durably, with receipts that verify and audit clean.
        let records = try UsageMeter.records(market: m.dir)
        #expect(records.count == 5)
        let signed = records.filter { $0.receipt.signatureVerifies && $0.domain == "es" }.count
        #expect(signed == 5)
        let findings = try Audit.run(market: m.dir, library: m.market.library.directory, sample: 10, seed: 1)
        #expect(findings.count == 5)
        let clean = findings.filter(\.ok).count
        #expect(clean == 5, "\(findings)")

        // An inflated meter is caught.
        var inflated = records[0]
        inflated.usage[0].usage += 500
        let served = try ServedModel.load(m.market.library.directory)
        #expect(try !Audit.check(inflated, served: served).ok)
        var forged = records[1]
        forged.tokens[forged.tokens.count - 1] = (forged.tokens.last! + 1) % 64
        #expect(try !Audit.check(forged, served: served).ok)

        // Settlement: one revenue event whose amount is the sum of the prices, paid out exactly.
        let period = records[0].period
        // Not before the period has ended.
        await #expect(throws: CoreError.self) { try await Settlement.settle(market: m.market, period: period, key: m.keys["operator"]!, at: records[0].at) }
        #expect(try await Settlement.closedPeriods(market: m.market, seconds: 86_400, now: records[0].at) == [])
        let end = m.now
        #expect(try await Settlement.closedPeriods(market: m.market, seconds: 86_400, now: end) == [period])
        let settled = try await Settlement.settle(market: m.market, period: period, key: m.keys["operator"]!, at: end)
        #expect(settled.count == 1)
        #expect(settled.first?.amount == records.reduce(0) { $0 + $1.price })
        #expect(settled.first?.receiptsRoot == RoutingReceipt.merkleRoot(records.sorted { $0.id < $1.id }.map(\.receipt.hash)))
        let paid = try m.market.ledger.payouts().reduce(Int64(0)) { $0 + $1.amount }
        #expect(paid == settled.first?.amount)
        // Each receipt's path to the settled root, as the server answers it.
        for r in records {
            let status = try #require(try await ReceiptStatus.find(r.receipt.hash, market: m.market))
            #expect(status.event != nil && status.receiptsRoot == settled.first?.receiptsRoot)
            #expect(RoutingReceipt.verifyInclusion(leaf: r.receipt.hash, proof: status.proof ?? [], root: status.receiptsRoot ?? ""))
        }
        try await RouterTests.test(m, configure: { $0.completions = service }) { client in
            let hash = records[2].receipt.hash
            let status = try await client.execute(uri: "/v1/receipts/\(hash)", method: .get) { r in
                (r.status, try JSONValue.parse(Data(r.body.readableBytesView)))
            }
            #expect(status.0 == .ok)
            #expect(status.1["receipts_root"]?.stringValue == settled.first?.receiptsRoot)
            #expect(try await client.execute(uri: "/v1/receipts/\(String(repeating: "0", count: 64))", method: .get) { $0.status } == .notFound)

            // An auditor's sample over the API: the draw Audit makes, for registered participants only.
            func sample(_ signer: String, forge: Bool = false) async throws -> (HTTPResponse.Status, ByteBuffer) {
                let k = m.keys[signer]!
                var sig = try k.sign(Audit.sampleRequestBytes(sample: 3, seed: 7))
                if forge { sig[1] ^= 4 }
                let headers: HTTPFields = [HTTPField.Name("Tessera-Key")!: k.publicHex, HTTPField.Name("Tessera-Signature")!: Hex.encode(sig)]
                return try await client.execute(uri: "/v1/meter/sample?n=3&seed=7", method: .get, headers: headers) { ($0.status, $0.body) }
            }
            #expect(try await sample("stranger").0 == .forbidden)
            #expect(try await sample("validator-1", forge: true).0 == .unauthorized)
            let (ok, body) = try await sample("validator-1")
            #expect(ok == .ok)
            let drawn = try StrictJSON.decode([MeterRecord].self, from: Data(body.readableBytesView), file: "sample", rejectUnknownKeys: true)
            #expect(drawn == Audit.draw(records, sample: 3, seed: 7))
            let remoteFindings = try Audit.check(drawn, library: m.market.library.directory)
            #expect(remoteFindings.count == 3 && remoteFindings.allSatisfy(\.ok))
        }
        // Settling again adds nothing.
        #expect(try await Settlement.settle(market: m.market, period: period, key: m.keys["operator"]!, at: end).isEmpty)
    }

    /// Concurrent requests share the batcher's steps and each still gets its own text.
    @Test func concurrentRequestsGetWhatTheyGetAlone() async throws {
        let (m, secret, service) = try Self.setUp()
        let local = try TextGenerator(served: try ServedModel.load(m.market.library.directory))
        let prompts = ["0", "01", "0123", "3210", "11111", "2", "0000000", "123"]
        let expected = try prompts.map { try local.complete(TextRequest(prompt: $0, maxTokens: 5 + $0.count)).text }
        try await RouterTests.test(m, configure: { $0.completions = service }) { client in
            let texts = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for (i, p) in prompts.enumerated() {
                    group.addTask {
                        let r = try await Self.post(client, #"{"prompt":"\#(p)","max_tokens":\#(5 + p.count),"temperature":0}"#, key: secret)
                        return (i, try Self.json(r)["choices"]?.arrayValue?.first?["text"]?.stringValue)
                    }
                }
                var out = [String?](repeating: nil, count: prompts.count)
                for try await (i, t) in group { out[i] = t }
                return out
            }
            #expect(texts == expected.map { Optional($0) })
        }
        #expect(try UsageMeter.records(market: m.dir).count == prompts.count)
    }

    @Test func inclusionProofsHoldForEveryLeafAndOnlyForIt() {
        for n in 1...9 {
            let leaves = (0..<n).map { ContentHash.sha256(Array("leaf \($0)".utf8)) }
            let root = RoutingReceipt.merkleRoot(leaves)
            for i in 0..<n {
                let proof = RoutingReceipt.inclusionProof(leaves, index: i)!
                #expect(RoutingReceipt.verifyInclusion(leaf: leaves[i], proof: proof, root: root), "\(i) of \(n)")
                #expect(!RoutingReceipt.verifyInclusion(leaf: ContentHash.sha256([UInt8(i)]), proof: proof, root: root))
                if n > 1 { #expect(!RoutingReceipt.verifyInclusion(leaf: leaves[(i + 1) % n], proof: proof, root: root)) }
            }
        }
        #expect(RoutingReceipt.inclusionProof(["zz"], index: 0) == nil)
        #expect(RoutingReceipt.inclusionProof(["ab"], index: 1) == nil)
    }

    @Test func pricesAndPeriodsAreExact() {
        #expect(MeterRecord.price(tokens: 1, pricePer1k: 1000) == 1)
        #expect(MeterRecord.price(tokens: 1, pricePer1k: 1) == 1)
        #expect(MeterRecord.price(tokens: 2000, pricePer1k: 1500) == 3000)
        #expect(MeterRecord.price(tokens: Int.max, pricePer1k: 2) == nil)
        #expect(MeterRecord.period(at: 1_764_547_200 + 3_599, seconds: 3_600) == "2025-12-01T00:00:00Z")
        #expect(RoutingReceipt.merkleRoot(["aa", "bb"].map { String(repeating: $0, count: 32) }) != RoutingReceipt.merkleRoot(["bb", "aa"].map { String(repeating: $0, count: 32) }))
    }
}
