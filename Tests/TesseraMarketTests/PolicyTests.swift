import Foundation
import Testing
import TesseraCore
import TesseraLedger
import TesseraMarket
import TesseraProof
import TesseraEngine
import TesseraTestSupport

/// The policy loader: market.toml read by the ledger ([consensus], [shares], [fees],
/// [claims]) and by Proof-of-Loss ([proof_of_loss]), domains/*.toml by the market, every
/// mistake named by file, key and value.
@Suite struct PolicyTests {
    @Test func shippedRulesLoad() throws {
        let rules = try MarketPolicyFolder(path: ReferenceFixtures.marketRules)
        #expect(rules.ledger.quorum == 2 && rules.ledger.genesisUnits == 1_000_000 && rules.ledger.validatorFeeBps == 500)
        #expect(rules.proof.confidence == 0.95 && rules.proof.backgroundToleranceMicronats == 16_000)
        #expect(rules.domains.map(\.name) == ["de", "es", "it"])
        #expect(try rules.domain("de").text == "/usr/share/games/fortunes/de")
        #expect { try rules.domain("fr") } throws: { "\($0)".contains("no domain \"fr\"") && "\($0)".contains("de, es, it") }
    }

    static let base = """
        [proof_of_loss]
        confidence = 0.95
        min_gain_micronats = 1
        background_tolerance_micronats = 1
        delta_norm_bound = 0.1
        copy_threshold = 0.9
        [consensus]
        quorum = 2
        min_gain_micronats = 1
        [shares]
        genesis_units = 10
        doubling_gain_micronats = 10
        max_mint_bps = 10
        [fees]
        validator_bps = 1
        operator_bps = 1
        [claims]
        max_claimants_per_expert = 1
        """

    /// Loads a market.toml through the whole folder loader, as `market init` does.
    static func load(_ text: String) throws -> MarketPolicyFolder {
        let dir = TemporaryDirectory("policy")
        try FileManager.default.createDirectory(atPath: dir.sub("domains"), withIntermediateDirectories: true)
        try text.write(toFile: dir.sub("market.toml"), atomically: true, encoding: .utf8)
        return try MarketPolicyFolder(path: dir.path)
    }

    /// (text replaced in the valid policy, its replacement, what the error must say)
    @Test(arguments: [
        ("validator_bps = 1", "validator_bps = 20000", "fees.validator_bps = 20000 is outside 0...10000"),
        ("validator_bps = 1", "validator_bps = \"x\"", "fees.validator_bps = \"x\" must be an integer"),
        ("validator_bps = 1\noperator_bps = 1", "validator_bps = 6000\noperator_bps = 6000", "exceeds 10000"),
        ("quorum = 2", "quorum = 0", "consensus.quorum = 0 is outside"),
        ("confidence = 0.95", "confidence = 1.5", "proof_of_loss.confidence = 1.5 is outside"),
        ("copy_threshold = 0.9", "copy_threshold = true", "proof_of_loss.copy_threshold = true must be a number"),
        ("[claims]", "[extra]\nx = 1\n[claims]", "unknown table [extra]"),
        ("max_mint_bps = 10", "max_mint_bps = 10\nsurprise = 1", "shares.surprise = 1: unknown key; known here: doubling_gain_micronats, genesis_units, max_mint_bps"),
        ("confidence = 0.95", "confidence = 0.95\nconfidnce = 0.9", "proof_of_loss.confidnce = 0.9: unknown key"),
        ("[fees]", "[fees", "m.toml:"),
        ("validator_bps = 1", "validator_bps = 1\nvalidator_bps = 2", "m.toml:"),
        ("confidence = 0.95\n", "", "missing key proof_of_loss.confidence"),
        ("[claims]\nmax_claimants_per_expert = 1", "", "missing table [claims]"),
        ("genesis_units = 10", "genesis_units = 1.5", "shares.genesis_units = 1.5"),
        ("genesis_units = 10", "genesis_units = 99999999999999999999", "m.toml:"),
    ])
    func badPoliciesNameTheKeyAndValue(_ old: String, _ new: String, _ message: String) throws {
        _ = try Self.load(Self.base)
        let text = Self.base.replacingOccurrences(of: old, with: new)
        #expect(text != Self.base)
        #expect { try Self.load(text) } throws: { error in
            "\(error)".contains("market.toml") && "\(error)".contains(message.replacingOccurrences(of: "m.toml", with: "market.toml"))
                || { print("got: \(error)"); return false }()
        }
    }

    /// Real TOML: quoted keys, dotted keys, inline tables, comments anywhere, underscores
    /// in numbers, a multi-line array of nothing — all read as the same policy.
    @Test func realTOMLSyntaxReadsTheSame() throws {
        let fancy = """
            # rules, written the way people write TOML
            "proof_of_loss" = { confidence = 0.95, min_gain_micronats = 1, background_tolerance_micronats = 1, delta_norm_bound = 0.1, copy_threshold = 9e-1 }

            [consensus]   # the ledger's part
            "quorum" = 2  # quoted key
            min_gain_micronats = +1  # a sign and a comment

            [shares]
            genesis_units = 1_0
            doubling_gain_micronats = 0x0a
            max_mint_bps = 10

            [fees]
            validator_bps = +1
            operator_bps = 1

            claims.max_claimants_per_expert = 1
            """
        // Dotted keys at the top level must come before any table header in TOML; move it.
        let reordered = "claims.max_claimants_per_expert = 1\n" + fancy.replacingOccurrences(of: "\nclaims.max_claimants_per_expert = 1", with: "")
        let a = try Self.load(Self.base), b = try Self.load(reordered)
        #expect(a.ledger == b.ledger)
        #expect(a.proof == b.proof)
    }

    /// Markets made before [consensus] existed keep their market.toml (genesis records its
    /// hash): the first layout, with quorum in [proof_of_loss], still reads the same.
    @Test func theFirstLayoutStillReads() throws {
        let first = Self.base.replacingOccurrences(of: "copy_threshold = 0.9\n[consensus]\nquorum = 2\nmin_gain_micronats = 1\n",
                                                   with: "copy_threshold = 0.9\nquorum = 2\n")
        #expect(first != Self.base && !first.contains("[consensus]"))
        let a = try Self.load(Self.base), b = try Self.load(first)
        #expect(a.ledger == b.ledger && a.proof == b.proof)
        // A misspelt key in that layout is still refused.
        #expect(throws: CoreError.self) { try Self.load(first.replacingOccurrences(of: "quorum = 2", with: "quorum = 2\nquorom = 2")) }
    }

    /// The market names the precision of its verdicts; a validator that cannot compute in
    /// it is told so before it judges anything.
    @Test func verdictPrecisionComesFromThePolicy() throws {
        #expect(try Self.load(Self.base).proof.matmul == .fp32Fixed)
        let amx = try Self.load(Self.base.replacingOccurrences(of: "copy_threshold = 0.9", with: "copy_threshold = 0.9\nmatmul = \"bf16x3\""))
        #expect(amx.proof.matmul == .bf16x3)
        if MatmulPrecision.amxAvailable {
            #expect(throws: Never.self) { try amx.proof.requireUsablePrecision(file: "m.toml") }
        } else {
            #expect { try amx.proof.requireUsablePrecision(file: "m.toml") } throws: { "\($0)".contains("cannot compute") && "\($0)".contains("bf16x3") }
        }
        #expect { try Self.load(Self.base.replacingOccurrences(of: "copy_threshold = 0.9", with: "copy_threshold = 0.9\nmatmul = \"fp64\"")) }
            throws: { "\($0)".contains("proof_of_loss.matmul = \"fp64\" is not one of") }
    }

    @Test func ledgerAndProofEachReadTheirOwnTables() throws {
        let doc = try PolicyFile.parse(Self.base, file: "m.toml")
        let ledger = try MarketPolicy.read(doc, file: "m.toml")
        let proof = try ProofPolicy.read(doc, file: "m.toml")
        #expect(ledger.quorum == 2 && ledger.minGainMicronats == 1)
        #expect(proof.copyThreshold == 0.9 && proof.deltaNormBound == 0.1)
        // Each reader refuses a misspelling in its own tables and leaves the others alone.
        let typo = try PolicyFile.parse(Self.base.replacingOccurrences(of: "quorum = 2", with: "quorum = 2\nquorom = 3"), file: "m.toml")
        #expect(throws: CoreError.self) { try MarketPolicy.read(typo, file: "m.toml") }
        #expect(try ProofPolicy.read(typo, file: "m.toml") == proof)
    }

    @Test(arguments: [
        ("held_out_bps = 2000", "held_out_bps = 0", "domain.held_out_bps = 0 is outside 1...9999"),
        ("name = \"xx\"", "name = \"XX\"", "domain.name \"XX\" must be lower-case"),
        ("name = \"xx\"", "name = \"yy\"", "must match the file name"),
        ("text = \"/t\"", "", "missing key domain.text"),
        ("text = \"/t\"", "text = \"/t\"\ncolour = \"red\"", "domain.colour = \"red\": unknown key"),
        ("[domain]", "[other]\na = 1\n[domain]", "unknown table [other]"),
    ])
    func badDomainsNameTheKeyAndValue(_ old: String, _ new: String, _ message: String) throws {
        let good = "[domain]\nname = \"xx\"\ndescription = \"d\"\nlanguage = \"xx\"\nsource = \"none\"\ntext = \"/t\"\nheld_out_bps = 2000\n"
        let dir = TemporaryDirectory("domains")
        try good.write(toFile: dir.sub("xx.toml"), atomically: true, encoding: .utf8)
        #expect(try DomainPolicy.loadAll(dir.path).map(\.name) == ["xx"])
        try good.replacingOccurrences(of: old, with: new).write(toFile: dir.sub("xx.toml"), atomically: true, encoding: .utf8)
        #expect { try DomainPolicy.loadAll(dir.path) } throws: { error in
            "\(error)".contains("xx.toml") && "\(error)".contains(message) || { print("got: \(error)"); return false }()
        }
    }
}
