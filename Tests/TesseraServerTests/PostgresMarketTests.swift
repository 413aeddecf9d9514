import AsyncHTTPClient
import Foundation
import Synchronization
import Testing
import TesseraClient
import TesseraCore
import TesseraLedger
import TesseraLedgerPostgres
import TesseraLibrary
import TesseraMarket
import TesseraServer
import TesseraTestSupport

/// Markets whose ledger is in PostgreSQL: the wrong database is refused before anything is
/// written, a ledger moves between SQLite and PostgreSQL and still verifies, and several
/// `tessera serve` processes on one database are one market.
@Suite(.enabled(if: TestPostgres.enabled), .serialized) struct PostgresMarketTests {
    @Test func wrongDatabasesAreRefusedAndNothingIsWritten() throws {
        let db = try TestPostgres.database()
        let m = try TestMarket("pg-market", database: db.url.description)
        let dir = MarketDirectory(path: m.dir)
        #expect(try dir.databaseURL() == db.url)
        #expect(!FileManager.default.fileExists(atPath: dir.ledgerPath))
        let events = try dir.open().store.read { try $0.eventCount() }
        #expect(events > 5)

        // Another market's directory pointed at this database.
        let other = try TestMarket("pg-other")
        #expect { try MarketDirectory(path: other.dir, database: db.url.description).open() } throws: {
            "\($0)".contains("holds another market")
        }
        // A market created into a database that already holds one: refused before any file is copied.
        let fresh = TemporaryDirectory("pg-init")
        #expect {
            try MarketDirectory.create(at: fresh.sub("m"), policyFolder: m.tmp.sub("policy"), library: m.tmp.sub("lib"),
                                       operatorKey: m.keys["operator"]!, publisher: m.keys["publisher"]!.publicHex, at: m.now,
                                       database: db.url.description)
        } throws: { "\($0)".contains("already holds a ledger") }
        #expect(!FileManager.default.fileExists(atPath: fresh.sub("m")))
        // Nobody listening.
        #expect { try MarketDirectory(path: m.dir, database: "postgresql://tessera@127.0.0.1:1/nothing").open() } throws: {
            "\($0)".contains("cannot connect to postgresql://tessera@127.0.0.1:1/nothing")
        }
        #expect { try MarketDirectory(path: m.dir, database: "postgresql://127.0.0.1/x").open() } throws: { "\($0)".contains("no user") }
        // A schema newer than this program.
        try PostgresLedgerStore.administer(db.url, ["UPDATE tessera_schema SET version = 99"])
        #expect { try dir.open() } throws: { "\($0)".contains("schema is version 99") }
        try PostgresLedgerStore.administer(db.url, ["UPDATE tessera_schema SET version = 1"])
        #expect(try dir.open().store.read { try $0.eventCount() } == events)
    }

    @Test func aLedgerMovesToPostgresAndBackAndVerifies() async throws {
        let db = try TestPostgres.database()
        let m = try TestMarket("pg-copy")
        let ids = [ExpertID(layer: 0, expert: 1)]
        _ = try m.claimAndSubmit("contributor-1", bundle: try m.makeBundle("contributor-1", experts: ids, seed: 9), experts: ids)
        let dir = MarketDirectory(path: m.dir)
        let before = try dir.open().events(since: 0, limit: 10_000)
        let shares = try await m.market.shares(owner: m.keys["publisher"]!.publicHex)

        let moved = try dir.moveLedger(to: db.url.description)
        #expect(moved.events == Int64(before.count))
        #expect(try dir.databaseURL() == db.url)
        #expect(moved.keptAs.map { FileManager.default.fileExists(atPath: $0) } == true)
        let onPostgres = try LocalMarket(directory: dir)
        #expect(try onPostgres.ledger.events(since: 0, limit: 10_000) == before)
        #expect(try await onPostgres.shares(owner: m.keys["publisher"]!.publicHex) == shares)
        #expect(try await onPostgres.verify().ok)
        // Appends go to the database now.
        let claim = try m.sign(.claim(.init(at: m.now, round: m.round, experts: [ExpertRef(layer: 1, expert: 0)], expiresAt: m.now + 3_600)), by: "contributor-2")
        #expect(try await onPostgres.post(claim).seq == Int64(before.count + 1))
        // A second copy into the same (now full) database is refused.
        #expect { try MarketDirectory(path: m.dir + "-none").moveLedger(to: db.url.description) } throws: { _ in true }

        let back = try dir.moveLedger(to: "sqlite")
        #expect(back.events == Int64(before.count + 1))
        #expect(try dir.databaseURL() == nil)
        let onSQLite = try LocalMarket(directory: dir)
        #expect(try await onSQLite.verify().ok)
        #expect(try onSQLite.ledger.events(since: 0, limit: 10_000).count == before.count + 1)
    }

    /// Two `tessera serve` processes on one database and one directory. Clients post to
    /// both at once, every action to both servers; a follower of one server hears of an
    /// event appended through the other; one server is killed with SIGKILL while clients
    /// keep posting, and the other finishes their work: every action recorded once, the
    /// chain verifies.
    @Test func twoServersOnOneDatabaseAreOneMarket() async throws {
        guard tesseraIsBuilt() else { return }
        let db = try TestPostgres.database()
        let m = try TestMarket("pg-two", database: db.url.description)
        try await withHTTPClient { try await Self.playTwoServers(m, $0) }
    }

    static func playTwoServers(_ m: TestMarket, _ http: HTTPClient) async throws {
        let a = try await ServerProcess.start(binary: ReferenceFixtures.binary, market: m.dir, logPath: m.tmp.sub("a.log"))
        let b = try await ServerProcess.start(binary: ReferenceFixtures.binary, market: m.dir, logPath: m.tmp.sub("b.log"))
        let ra = try RemoteMarket(url: a.url, client: http), rb = try RemoteMarket(url: b.url, client: http)
        ra.retryFor = 0
        let start = try await rb.events(since: 0, limit: 10_000, wait: 0).count

        // A follower of B hears of an event appended through A.
        let follow = Task { try await rb.events(since: Int64(start), limit: 10, wait: 20) }
        try await Task.sleep(nanoseconds: 300_000_000)
        let first = try m.sign(.register(.init(at: m.now, key: ParticipantKey.generate().publicHex, roles: [.owner], stake: 0)), by: "operator")
        let seq = try await ra.post(first).seq
        let heard = try await follow.value
        #expect(heard.map(\.seq) == [seq], "the follower of the other server heard \(heard.map(\.seq))")

        // 8 clients, 40 actions each, every action posted to A and to B (in either order);
        // A is killed part-way.
        let perClient = 40, clients = 8
        let actions = try (0..<clients).map { c in
            try (0..<perClient).map { _ in
                try m.sign(.register(.init(at: m.now, key: ParticipantKey.generate().publicHex, roles: [.owner], stake: 0)), by: "operator")
            }
        }
        let aDown = SharedFlag(), aAnswered = SharedFlag()
        let killer = Task {
            try await Task.sleep(nanoseconds: 700_000_000)
            await a.kill9()
        }
        let seqs = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for c in 0..<clients {
                group.addTask {
                    var out: [Int64] = []
                    for action in actions[c] {
                        // Once A stops answering, its clients go to B alone (a refused
                        // connection is retried by the HTTP client until its connect timeout).
                        let viaA = aDown.isSet ? nil : try? await ra.post(action)
                        if viaA == nil { aDown.set() }
                        let viaB = try await rb.post(action)
                        if let viaA { aAnswered.set(); #expect(viaA.seq == viaB.seq, "one action, two numbers: \(viaA.seq) and \(viaB.seq)") }
                        out.append(viaB.seq)
                    }
                    return out
                }
            }
            var all: [Int64] = []
            for try await s in group { all += s }
            return all
        }
        try await killer.value
        #expect(aAnswered.isSet && aDown.isSet, "A answered some of the load and was killed during it")
        #expect(Set(seqs).count == clients * perClient, "every action has its own event")
        let events = try await rb.events(since: 0, limit: 10_000, wait: 0)
        #expect(events.count == start + 1 + clients * perClient, "nothing lost, nothing twice: \(events.count) events")
        #expect(events.map(\.seq) == Array(1...Int64(events.count)))
        #expect(try await rb.verify().ok)
        #expect(!a.isRunning)
        await b.stop()
    }
}

final class SharedFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// Two servers as on two machines: each with its own market directory (a copy of the
/// market's policy and base library), one PostgreSQL ledger and one S3-compatible store
/// (moto). A round played across them: the bundle is uploaded to A and judged through B,
/// the new version's shard is uploaded to A and recorded through B, and B serves both.
@Suite(.enabled(if: TestPostgres.enabled && TestS3.enabled), .serialized) struct SharedStoreTests {
    @Test func aRoundAcrossTwoServersWithTheirOwnDirectories() async throws {
        guard tesseraIsBuilt() else { return }
        try await withHTTPClient { try await Self.play($0) }
    }

    static func play(_ http: HTTPClient) async throws {
        let db = try TestPostgres.database()
        let m = try TestMarket("two-dirs", database: db.url.description)
        let s3 = try await TestS3.client(http)
        #expect(try await BlobMirror(s3: s3).putLibrary(m.market.library) == m.market.library.manifest.experts.count + 1)
        // B's machine: the market's rules and base library, no bundles.
        let dirB = m.tmp.sub("market-b")
        try FileManager.default.copyItem(atPath: m.dir, toPath: dirB)
        let opLib = m.tmp.sub("operator-library")
        try FileManager.default.copyItem(atPath: m.dir + "/library", toPath: opLib)

        let ids = [ExpertID(layer: 1, expert: 2)]
        let bundle = try m.makeBundle("contributor-1", experts: ids, seed: 11)
        let hash = try m.claimAndSubmit("contributor-1", bundle: bundle, experts: ids)
        try m.closeRound()

        let blobs = ["--blobs", s3.location.description]
        let env = TestS3.credentials
        let a = try await ServerProcess.start(binary: ReferenceFixtures.binary, market: m.dir, logPath: m.tmp.sub("a.log"), arguments: blobs, environment: env)
        let b = try await ServerProcess.start(binary: ReferenceFixtures.binary, market: dirB, logPath: m.tmp.sub("b.log"),
                                              arguments: blobs + ["--blob-redirect"], environment: env)
        let ra = try RemoteMarket(url: a.url, client: http), rb = try RemoteMarket(url: b.url, client: http)

        #expect(try await ra.uploadBundle(bundle) == hash)
        // B has never seen the bundle: it fetches it from the store and checks it as an upload.
        let fetched = m.tmp.sub("fetched-bundle")
        try await rb.downloadBundle(hash, to: fetched)
        #expect(try SubmissionBundle.verify(fetched, library: m.market.library).items.map(\.expert) == ids)
        for (v, gain) in [("validator-1", Int64(1_500)), ("validator-2", 1_100)] {
            _ = try await rb.post(try m.sign(.verdict(.init(at: m.now, submission: hash, gainLCBMicronats: gain, regressionUCBMicronats: 5,
                                                            accept: true, reason: "gain")), by: v))
        }
        #expect(try await ra.round(m.round)?.submissions.first?.state == "accepted")

        // The operator merges (here: the bundle's delta applied to its copy of the library),
        // uploads the shard to A and records the version through B.
        let lib = try ExpertLibrary(directory: opLib)
        let delta = try #require(try FileManager.default.contentsOfDirectory(atPath: bundle + "/deltas").first)
        let base = try #require(lib.manifest.entry(ids[0])?.head.hash)
        let version = try lib.applyDelta(bundle + "/deltas/" + delta, producedBy: [hash])
        #expect(try await ra.uploadShard(lib.shardPath(version), signedBy: m.keys["operator"]!) == version)
        let recorded = try await rb.post(try m.sign(.newVersion(.init(at: m.now, layer: ids[0].layer, expert: ids[0].expert, version: version,
                                                                      parent: base, submissions: [hash], credits: nil)), by: "operator"))
        #expect(recorded.isAppended)
        // Both servers name the new version and serve its shard (B by a pre-signed redirect).
        for r in [ra, rb] {
            let manifest = try StrictJSON.decode(LibraryManifest.self, from: try await r.libraryManifest(), file: "manifest", rejectUnknownKeys: true)
            #expect(manifest.entry(ids[0])?.head.hash == version)
            let out = m.tmp.sub("shard-\(UUID().uuidString)")
            try await r.downloadShard(version, to: out)
            #expect(try ContentHash.sha256(file: out) == version)
        }
        #expect(try await ra.verify().ok)
        #expect(try await rb.verify().ok)
        await a.stop()
        await b.stop()
    }
}
