import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TesseraCore
import TesseraLedger
import TesseraLibrary
import TesseraMarket
@testable import TesseraServer
import TesseraTestSupport

/// The server's routes through Hummingbird's router tester: every answer, every refusal,
/// and that a refused request leaves nothing behind.
@Suite struct RouterTests {
    static func server(_ m: TestMarket, _ configure: (inout ServerConfiguration) -> Void = { _ in }) -> MarketServer {
        var c = ServerConfiguration()
        c.logLevel = .critical
        configure(&c)
        return MarketServer(market: m.market, configuration: c)
    }

    static func test(_ m: TestMarket, configure: (inout ServerConfiguration) -> Void = { _ in },
                     _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await server(m, configure).buildApplication().test(.router, body)
    }

    static func text(_ r: TestResponse) -> String { String(buffer: r.body) }

    static func errorCode(_ r: TestResponse) -> String? {
        (try? JSONValue.parse(Data(r.body.readableBytesView)))?["error"]?["code"]?.stringValue
    }

    @Test func everyRouteIsInTheOpenAPIDocumentAndTheReverse() throws {
        let m = try TestMarket()
        let doc = try JSONValue.parse(Data(OpenAPIDocument.json.utf8))
        #expect(doc["openapi"]?.stringValue == "3.1.0")
        var documented: Set<String> = []
        for (path, item) in doc["paths"]?.objectMembers ?? [] {
            for (method, _) in item.objectMembers ?? [] where ["get", "put", "post", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let routed = Set(Self.server(m).registeredRoutes().map { "\($0.method) \($0.path)" })
        #expect(routed.count == Self.server(m).registeredRoutes().count, "a route is registered twice")
        #expect(routed.subtracting(documented).isEmpty, "routes missing from the document: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented paths with no route: \(documented.subtracting(routed).sorted())")
        // Every $ref names a schema or response the document defines.
        let refs = OpenAPIDocument.json.matches(of: /"\$ref": "#\/components\/(\w+)\/(\w+)"/).map { (String($0.1), String($0.2)) }
        #expect(!refs.isEmpty)
        for (section, name) in refs { #expect(doc["components"]?[section]?[name] != nil, "\(section)/\(name) is not defined") }
    }

    /// Each action kind's payload schema names exactly the members the ledger's type
    /// writes, and requires exactly those it always writes.
    @Test func actionSchemasMatchTheLedgersPayloads() throws {
        let doc = try JSONValue.parse(Data(OpenAPIDocument.json.utf8))
        let schemas = try #require(doc["components"]?["schemas"])
        let h = String(repeating: "a", count: 64)
        let ref = ExpertRef(layer: 1, expert: 2), pinned = ExpertRef(layer: 1, expert: 2, version: h)
        let usage = LedgerAction.Usage(layer: 0, expert: 1, version: h, usage: 5)
        // For each kind: an action with every optional member absent, and one with all present.
        let samples: [(LedgerAction, LedgerAction)] = [
            (.genesis(.init(at: 1, publisher: h, experts: [ref], policySHA256: h)), .genesis(.init(at: 1, publisher: h, experts: [pinned], policySHA256: h))),
            (.register(.init(at: 1, key: h, roles: [.contributor], stake: 0)), .register(.init(at: 1, key: h, roles: [.validator], stake: 3))),
            (.openDomain(.init(at: 1, name: "es")), .openDomain(.init(at: 1, name: "es"))),
            (.openRound(.init(at: 1, round: "r", domain: "es", experts: [ref], closesAt: 9)), .openRound(.init(at: 1, round: "r", domain: "es", experts: [pinned], closesAt: 9))),
            (.closeRound(.init(at: 1, round: "r")), .closeRound(.init(at: 1, round: "r"))),
            (.claim(.init(at: 1, round: "r", experts: [ref], expiresAt: 9)), .claim(.init(at: 1, round: "r", experts: [pinned], expiresAt: 9))),
            (.submit(.init(at: 1, round: "r", bundle: h, bundleSignature: h, experts: [ref])), .submit(.init(at: 1, round: "r", bundle: h, bundleSignature: h, experts: [pinned]))),
            (.verdict(.init(at: 1, submission: h, gainLCBMicronats: 5, regressionUCBMicronats: 1, accept: true, reason: "x")),
             .verdict(.init(at: 1, submission: h, gainLCBMicronats: 5, regressionUCBMicronats: 1, accept: true, reason: "x"))),
            (.newVersion(.init(at: 1, layer: 0, expert: 1, version: h, parent: h, submissions: [h])),
             .newVersion(.init(at: 1, layer: 0, expert: 1, version: h, parent: h, submissions: [h], credits: [4]))),
            (.revenue(.init(at: 1, domain: "es", period: "p", amount: 10, usage: [usage])), .revenue(.init(at: 1, domain: "es", period: "p", amount: 10, usage: [usage], receiptsRoot: h))),
            (.commit(.init(at: 1, round: "r", commitment: h)), .commit(.init(at: 1, round: "r", commitment: h))),
            (.reveal(.init(at: 1, round: "r", salt: "ab", heldOutSHA256: h)), .reveal(.init(at: 1, round: "r", salt: "ab", heldOutSHA256: h))),
        ]
        #expect(Set(samples.map(\.0.kind)) == Set(LedgerAction.Kind.allCases.map(\.rawValue)), "a kind without a sample")
        func keys(_ v: JSONValue?) -> Set<String> { Set((v?.objectMembers ?? []).map(\.0)) }
        func required(_ v: JSONValue?) -> Set<String> { Set((v?["required"]?.arrayValue ?? []).compactMap(\.stringValue)) }
        func schema(_ v: JSONValue?) -> JSONValue? {
            guard let r = v?["$ref"]?.stringValue else { return v }
            return schemas[String(r.split(separator: "/").last ?? "")]
        }
        for (minimal, full) in samples {
            let kind = minimal.kind
            let name = kind.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
            let payload = try #require(schemas[name + "Payload"], "no schema \(name)Payload")
            let small = try JSONValue.parse(Data(try minimal.payloadJSON().utf8)), big = try JSONValue.parse(Data(try full.payloadJSON().utf8))
            #expect(keys(payload["properties"]) == keys(big), "\(kind): documented \(keys(payload["properties"]).sorted()), written \(keys(big).sorted())")
            #expect(required(payload) == keys(small), "\(kind): required \(required(payload).sorted()), always written \(keys(small).sorted())")
            #expect(schemas[name + "Action"]?["properties"]?["kind"]?["const"]?.stringValue == kind)
            // Nested objects (expert references, usage) too.
            for (member, value) in big.objectMembers ?? [] {
                guard let item = value.arrayValue?.first, item.objectMembers != nil else { continue }
                let nested = schema(schema(payload["properties"]?[member])?["items"])
                let smallItem = small[member]?.arrayValue?.first
                #expect(keys(nested?["properties"]) == keys(item), "\(kind).\(member)")
                #expect(required(nested) == keys(smallItem), "\(kind).\(member) required")
            }
        }
    }

    @Test func queriesAnswerWhatTheDirectoryAnswers() async throws {
        let m = try TestMarket()
        let local = m.market
        let publisher = m.keys["publisher"]!.publicHex
        try await Self.test(m) { client in
            func same<T: Encodable>(_ uri: String, _ value: T) async throws {
                try await client.execute(uri: uri, method: .get) { r throws in
                    #expect(r.status == .ok, "\(uri): \(Self.text(r))")
                    #expect(Self.text(r) == (try JSONOutput.compact(value)), "\(uri)")
                }
            }
            try await same("/v1/market", try await local.summary())
            try await same("/v1/rounds", try await local.rounds())
            try await same("/v1/rounds/es-1", try await local.round("es-1"))
            try await same("/v1/shares/\(publisher)", try await local.shares(owner: publisher))
            try await same("/v1/experts/1:2", try await local.expert(ExpertID(layer: 1, expert: 2)))
            try await same("/v1/experts/1%3A2", try await local.expert(ExpertID(layer: 1, expert: 2)))
            try await same("/v1/payouts", try await local.payouts(event: nil))
            try await same("/v1/events?since=2&limit=3", try await local.events(since: 2, limit: 3, wait: 0))
            try await client.execute(uri: "/v1/verify", method: .get) { r throws in
                #expect(try JSONValue.parse(Data(r.body.readableBytesView))["ok"]?.boolValue == true)
            }
            try await client.execute(uri: "/v1/policy", method: .get) { r throws in
                #expect(Array(r.body.readableBytesView) == Array(try Data(contentsOf: URL(fileURLWithPath: m.market.directory.policyPath))))
            }
            try await client.execute(uri: "/v1/domains/es", method: .get) { r throws in #expect(Self.text(r).contains("name = \"es\"")) }
            try await client.execute(uri: "/healthz", method: .get) { r throws in #expect(r.status == .ok && Self.text(r).contains("\"ok\"")) }
            // A known path asked with a method it does not take: 405 and what it takes.
            try await client.execute(uri: "/v1/rounds", method: .delete) { r throws in
                #expect(r.status == .methodNotAllowed && r.headers[.allow] == "GET", "\(r.status)")
            }
            try await client.execute(uri: "/v1/shards/\(String(repeating: "c", count: 64))", method: .post) { r throws in
                #expect(r.status == .methodNotAllowed && r.headers[.allow] == "GET, PUT", "\(r.status) \(r.headers[.allow] ?? "")")
            }
            // Refusals name what was wrong.
            for (uri, status, says) in [("/v1/rounds/es-9", HTTPResponse.Status.notFound, "rounds: es-1"),
                                        ("/v1/domains/xx", .notFound, "domains: es"),
                                        ("/v1/experts/9:9", .notFound, "9:9"),
                                        ("/v1/experts/one:two", .badRequest, "one:two"),
                                        ("/v1/shares/not-a-key", .badRequest, "not a public key"),
                                        ("/v1/events?since=-1", .badRequest, "since=-1"),
                                        ("/v1/events?limit=0", .badRequest, "limit=0"),
                                        ("/v1/events?wait=nan", .badRequest, "wait=nan"),
                                        ("/v1/payouts?event=x", .badRequest, "event=x"),
                                        ("/v1/nothing", .notFound, "no route GET /v1/nothing")] {
                try await client.execute(uri: uri, method: .get) { r throws in
                    #expect(r.status == status, "\(uri): \(r.status)")
                    #expect(Self.text(r).contains(says), "\(uri): \(Self.text(r))")
                }
            }
        }
    }

    @Test func shardsAreImmutableRangedAndOnlyShards() async throws {
        let m = try TestMarket()
        let hash = m.market.library.manifest.experts[0].head.hash
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: m.market.library.shardPath(hash))))
        try await Self.test(m) { client in
            try await client.execute(uri: "/v1/shards/\(hash)", method: .get) { r throws in
                #expect(r.status == .ok && Array(r.body.readableBytesView) == bytes)
                #expect(r.headers[.eTag] == "\"\(hash)\"" && r.headers[.cacheControl]?.contains("immutable") == true)
                #expect(r.headers[.acceptRanges] == "bytes")
            }
            try await client.execute(uri: "/v1/shards/\(hash)", method: .get, headers: [.ifNoneMatch: "\"\(hash)\""]) { r throws in
                #expect(r.status == .notModified && r.body.readableBytes == 0)
            }
            for (range, slice) in [("bytes=10-19", 10...19), ("bytes=-5", (bytes.count - 5)...(bytes.count - 1)),
                                   ("bytes=\(bytes.count - 3)-", (bytes.count - 3)...(bytes.count - 1)), ("bytes=0-99999999", 0...(bytes.count - 1))] {
                try await client.execute(uri: "/v1/shards/\(hash)", method: .get, headers: [.range: range]) { r throws in
                    #expect(r.status == .partialContent, "\(range)")
                    #expect(Array(r.body.readableBytesView) == Array(bytes[slice]), "\(range)")
                    #expect(r.headers[.contentRange] == "bytes \(slice.lowerBound)-\(slice.upperBound)/\(bytes.count)")
                }
            }
            for range in ["bytes=\(bytes.count)-", "bytes=5-2", "bytes=0-1,4-5", "lines=1-2", "bytes=-0"] {
                try await client.execute(uri: "/v1/shards/\(hash)", method: .get, headers: [.range: range]) { r throws in
                    #expect(r.status == .rangeNotSatisfiable, "\(range): \(r.status)")
                }
            }
            // Anything but 64 lower-case hex digits is refused before a path is made of it.
            for trick in ["..%2Fledger.sqlite", "%2E%2E%2F%2E%2E%2Fmarket.toml", hash.uppercased(), String(hash.dropLast()), hash + "0",
                          String(hash.dropLast()) + "%00", "manifest.json"] {
                try await client.execute(uri: "/v1/shards/\(trick)", method: .get) { r throws in
                    #expect(r.status == .badRequest || r.status == .notFound, "\(trick): \(r.status)")
                    #expect(Self.errorCode(r) != nil, "\(trick): \(Self.text(r))")
                }
            }
            try await client.execute(uri: "/v1/shards/\(String(repeating: "a", count: 64))", method: .get) { r throws in #expect(r.status == .notFound) }
        }
    }

    @Test func actionsAreCheckedIdempotentAndNamedWhenRefused() async throws {
        let m = try TestMarket()
        let before = try m.market.ledger.currentState().seq
        let claim = LedgerAction.claim(.init(at: m.now, round: m.round, experts: [ExpertRef(layer: 0, expert: 1)], expiresAt: m.now + 3_600))
        let good = try m.body(claim, by: "contributor-1")
        try await Self.test(m) { client in
            func post(_ body: [UInt8], headers: HTTPFields = [:]) async throws -> TestResponse {
                try await client.execute(uri: "/v1/actions", method: .post, headers: headers, body: ByteBuffer(bytes: body))
            }
            var r = try await post(good)
            #expect(r.status == .ok)
            let receipt = try StrictJSON.decode(ActionReceipt.self, from: Data(r.body.readableBytesView), file: "receipt")
            #expect(receipt.recorded && receipt.seq == before + 1)
            // The same action again: the same event, nothing new.
            r = try await post(good)
            #expect(try StrictJSON.decode(ActionReceipt.self, from: Data(r.body.readableBytesView), file: "receipt") == ActionReceipt(.duplicate(seq: before + 1)))

            // A signature that does not verify.
            var envelope = try ActionEnvelope(try m.sign(claim, by: "contributor-2"))
            envelope.signature = String(envelope.signature.reversed())
            r = try await post(Array(try JSONOutput.compact(envelope).utf8))
            #expect(r.status == .unauthorized && Self.errorCode(r) == "bad_signature", "\(Self.text(r))")
            // Signed by a key nobody registered.
            r = try await post(try m.body(claim, by: "stranger"))
            #expect(r.status == .forbidden && Self.text(r).contains("not registered"), "\(Self.text(r))")
            // A rule of the ledger: a round that does not exist.
            let elsewhere = LedgerAction.claim(.init(at: m.now, round: "es-9", experts: [ExpertRef(layer: 0, expert: 1)], expiresAt: m.now + 3_600))
            r = try await post(try m.body(elsewhere, by: "contributor-2"))
            #expect(r.status == .conflict && Self.text(r).contains("es-9"), "\(Self.text(r))")
            // A time two hours from the server's clock.
            let late = LedgerAction.claim(.init(at: m.now + 7_200, round: m.round, experts: [ExpertRef(layer: 0, expert: 2)], expiresAt: m.now + 9_000))
            r = try await post(try m.body(late, by: "contributor-2"))
            #expect(r.status == .conflict && Self.text(r).contains("market's clock"), "\(Self.text(r))")
            // Times at the ends of Int64 (the fuzzer's first crash).
            for at in [Int64.min, Int64.min + 1, Int64.max] {
                let extreme = LedgerAction.reveal(.init(at: at, round: m.round, salt: "00", heldOutSHA256: String(repeating: "0", count: 64)))
                r = try await post(try m.body(extreme, by: "validator-1"))
                #expect(r.status == .conflict && Self.text(r).contains("market's clock"), "\(at): \(Self.text(r))")
            }
            // Malformed bodies.
            for (body, says) in [("{", "request body"), ("[]", "request body"), ("{\"kind\":\"claim\"}", "payload"),
                                 (String(decoding: good, as: UTF8.self).replacingOccurrences(of: "{\"actor\"", with: "{\"extra\":1,\"actor\""), "extra"),
                                 (String(decoding: good, as: UTF8.self).replacingOccurrences(of: "\"kind\":\"claim\"", with: "\"kind\":\"steal\""), "steal"),
                                 (String(decoding: good, as: UTF8.self).replacingOccurrences(of: "\"actor\":\"", with: "\"actor\":\"../"), "actor")] {
                r = try await post(Array(body.utf8))
                #expect(r.status == .badRequest, "\(body.prefix(60)): \(r.status)")
                #expect(Self.text(r).contains(says), "\(body.prefix(60)): \(Self.text(r))")
            }
            // Too large: refused on its declared length, and on what arrives without one.
            let big = [UInt8](repeating: 0x20, count: 100_000)
            r = try await post(big, headers: [.contentLength: String(big.count)])
            #expect(r.status == .contentTooLarge, "\(r.status)")
            r = try await post(big)
            #expect(r.status == .contentTooLarge, "\(r.status)")
        }
        // One event was recorded, and the chain still verifies.
        #expect(try m.market.ledger.currentState().seq == before + 1)
        #expect(try await m.market.verify().ok)
    }

    @Test func writesAreRateLimitedPerKeyAndForgeriesSpendNothing() async throws {
        let m = try TestMarket()
        try await Self.test(m, configure: { $0.writesPerSecondPerKey = 0.01; $0.writeBurst = 2 }) { client in
            func claim(_ expert: Int, by name: String = "contributor-1", forged: Bool = false) async throws -> TestResponse {
                let a = LedgerAction.claim(.init(at: m.now, round: m.round, experts: [ExpertRef(layer: 0, expert: expert)], expiresAt: m.now + 3_600))
                var e = try ActionEnvelope(try m.sign(a, by: name))
                if forged { e.signature = String(repeating: "0", count: 128) }
                return try await client.execute(uri: "/v1/actions", method: .post, body: ByteBuffer(bytes: Array(try JSONOutput.compact(e).utf8)))
            }
            // Someone forging contributor-1's actions does not spend its allowance.
            for _ in 0..<5 { #expect(try await claim(0, forged: true).status == .unauthorized) }
            #expect(try await claim(0).status == .ok)
            #expect(try await claim(1).status == .ok)
            let r = try await claim(2)
            #expect(r.status == .tooManyRequests && r.headers[.retryAfter] != nil, "\(r.status)")
            // Another key has its own allowance.
            #expect(try await claim(3, by: "contributor-2").status == .ok)
        }
    }

    /// A poll with nothing new returns when its wait is over; one waiting when an event is
    /// appended returns it. (A hang fails by the time limit.)
    @Test(.timeLimit(.minutes(2))) func eventsLongPollWakesOnAnAppendAndTimesOut() async throws {
        let m = try TestMarket()
        let head = try m.market.ledger.currentState().seq
        try await Self.test(m) { client in
            try await client.execute(uri: "/v1/events?since=\(head)&wait=0.3", method: .get) { r throws in
                #expect(r.status == .ok && Self.text(r) == "[]")
            }
            let action = try m.sign(.claim(.init(at: m.now, round: m.round, experts: [ExpertRef(layer: 1, expert: 1)], expiresAt: m.now + 3_600)),
                                    by: "contributor-1")
            let poster = Task {
                try await Task.sleep(nanoseconds: 300_000_000)
                _ = try m.market.postEach([action])
            }
            try await client.execute(uri: "/v1/events?since=\(head)&wait=60", method: .get) { r throws in
                let events = try StrictJSON.decode([StoredEvent].self, from: Data(r.body.readableBytesView), file: "events")
                #expect(events.map(\.seq) == [head + 1] && events[0].kind == "claim")
            }
            try await poster.value
        }
    }

    @Test func bundlesAreTakenOnlyAfterTheWindowAndOnlyIfSubmitted() async throws {
        let m = try TestMarket()
        let ids = [ExpertID(layer: 0, expert: 1), ExpertID(layer: 1, expert: 3)]
        let b1 = try m.makeBundle("contributor-1", experts: ids, seed: 1)
        let hash = try m.claimAndSubmit("contributor-1", bundle: b1, experts: ids)
        let archive = try BundleArchive.pack(b1)
        // contributor-2's bundle, never submitted; and one whose signature was forged.
        let b2 = try m.makeBundle("contributor-2", experts: [ids[0]], seed: 2)
        let forged = m.tmp.sub("forged")
        try FileManager.default.copyItem(atPath: b1, toPath: forged)
        try (String(repeating: "ab", count: 64) + "\n").write(toFile: forged + "/bundle.sig", atomically: true, encoding: .utf8)
        try await Self.test(m) { client in
            func put(_ bytes: [UInt8], headers: HTTPFields = [:]) async throws -> TestResponse {
                try await client.execute(uri: "/v1/bundles", method: .put, headers: headers, body: ByteBuffer(bytes: bytes))
            }
            var r = try await put(archive)
            #expect(r.status.code == 425 && Self.text(r).contains("window"), "\(r.status) \(Self.text(r))")
            #expect(m.storedBundles.isEmpty)
            try m.closeRound()
            r = try await put(try BundleArchive.pack(b2))
            #expect(r.status == .forbidden && Self.text(r).contains("was not submitted"), "\(Self.text(r))")
            r = try await put(try BundleArchive.pack(forged))
            #expect(r.status == .badRequest || r.status == .unauthorized, "\(r.status) \(Self.text(r))")
            for cut in [10, archive.count / 2, archive.count - 1] {
                r = try await put(Array(archive.prefix(cut)))
                #expect(r.status == .badRequest, "truncated at \(cut): \(r.status) \(Self.text(r))")
            }
            r = try await put([UInt8](repeating: 7, count: 200))
            #expect(r.status == .badRequest)
            let huge = [UInt8](repeating: 0, count: TestMarket.bundleCap + (2 << 20))
            r = try await put(huge, headers: [.contentLength: String(huge.count)])
            #expect(r.status == .contentTooLarge)
            r = try await put(huge)
            #expect(r.status == .contentTooLarge)
            #expect(m.storedBundles.isEmpty, "nothing refused is stored: \(m.storedBundles)")

            for _ in 0..<2 {
                r = try await put(archive)
                #expect(r.status == .created, "\(Self.text(r))")
                #expect(Self.text(r).contains(hash))
            }
            #expect(m.storedBundles == [hash])
            try await client.execute(uri: "/v1/bundles/\(hash)", method: .get) { r throws in
                let path = m.tmp.sub("downloaded.archive")
                try AtomicFile.write(Array(r.body.readableBytesView), to: path)
                _ = try BundleArchive.unpack(path, into: m.tmp.sub("downloaded"), maxBytes: TestMarket.bundleCap)
                #expect(try SubmissionBundle.submissionRecord(m.tmp.sub("downloaded")).hash == hash)
            }
            try await client.execute(uri: "/v1/bundles/\(String(repeating: "b", count: 64))", method: .get) { r throws in #expect(r.status == .notFound) }
            try await client.execute(uri: "/v1/bundles/..%2Fledger.sqlite", method: .get) { r throws in #expect(r.status == .badRequest) }
        }
    }

    @Test func onlyTheOperatorStoresShards() async throws {
        let m = try TestMarket()
        // A new version of expert 0:0 made in a copy of the library, as a merge makes one.
        let id = ExpertID(layer: 0, expert: 0)
        try FileManager.default.copyItem(atPath: m.tmp.sub("lib"), toPath: m.tmp.sub("lib2"))
        let copy = try ExpertLibrary(directory: m.tmp.sub("lib2"))
        var (parent, w) = try copy.expertWeights(id)
        w.tensors[0].values[0] += 0.5
        let hash = try copy.storeVersion(id, weights: w, parent: parent, producedBy: [], origin: "test")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: copy.shardPath(hash))))
        let junk = Array("not a safetensors file".utf8)
        let byOperator = try Self.shardHeaders(m, "operator", hash)
        let signedOtherText = try Self.shardHeaders(m, "operator", hash, signing: "something else")
        let byContributor = try Self.shardHeaders(m, "contributor-1", hash)
        let junkByOperator = try Self.shardHeaders(m, "operator", ContentHash.sha256(junk))
        try await Self.test(m) { client in
            func put(_ h: HTTPFields, _ body: [UInt8] = bytes, name: String = hash) async throws -> TestResponse {
                try await client.execute(uri: "/v1/shards/\(name)", method: .put, headers: h, body: ByteBuffer(bytes: body))
            }
            var r = try await put([:])
            #expect(r.status == .unauthorized)
            r = try await put(signedOtherText)
            #expect(r.status == .unauthorized)
            r = try await put(byContributor)
            #expect(r.status == .forbidden)
            var tampered = bytes
            tampered[tampered.count - 1] ^= 1
            r = try await put(byOperator, tampered)
            #expect(r.status == .badRequest)
            #expect(!FileManager.default.fileExists(atPath: m.market.library.shardPath(hash)))
            r = try await put(byOperator)
            #expect(r.status == .created, "\(Self.text(r))")
            #expect(FileManager.default.fileExists(atPath: m.market.library.shardPath(hash)))
            // A shard of no expert of this model is refused by what it holds.
            r = try await put(junkByOperator, junk, name: ContentHash.sha256(junk))
            #expect(r.status == .badRequest, "\(Self.text(r))")
        }
    }

    static func shardHeaders(_ m: TestMarket, _ name: String, _ hash: String, signing text: String? = nil) throws -> HTTPFields {
        let sig = try m.keys[name]!.sign(Array((text ?? "tessera-upload-shard/1|\(hash)").utf8))
        return [HTTPField.Name("Tessera-Key")!: m.keys[name]!.publicHex, HTTPField.Name("Tessera-Signature")!: Hex.encode(sig)]
    }

    @Test func metricsCountRequestsEventsAndBytes() async throws {
        let m = try TestMarket()
        let action = try m.body(.claim(.init(at: m.now, round: m.round, experts: [ExpertRef(layer: 0, expert: 3)], expiresAt: m.now + 3_600)),
                                by: "contributor-2")
        let hash = m.market.library.manifest.experts[0].head.hash
        try await Self.test(m) { client in
            _ = try await client.execute(uri: "/v1/actions", method: .post, body: ByteBuffer(bytes: action))
            _ = try await client.execute(uri: "/v1/shards/\(hash)", method: .get)
            try await client.execute(uri: "/metrics", method: .get) { r throws in
                let text = Self.text(r)
                #expect(r.status == .ok)
                for name in ["tessera_events_appended_total", "tessera_bytes_served_total", "hb_requests", "http_server_request_duration_bucket"] {
                    #expect(text.contains(name), "\(name) missing from /metrics")
                }
            }
        }
    }
}
