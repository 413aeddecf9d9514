// swift-tools-version: 6.1
import PackageDescription

// No target sets unsafe flags, so other packages can depend on these libraries; code that
// needs AVX2, AVX-512 or AMX lives in C functions with per-function target attributes and
// is chosen at run time by the processor's features.
let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TesseraCore", targets: ["TesseraCore"]),
        .library(name: "TesseraTokenizers", targets: ["TesseraTokenizers"]),
        .library(name: "TesseraEngine", targets: ["TesseraEngine"]),
        .library(name: "TesseraLibrary", targets: ["TesseraLibrary"]),
        .library(name: "TesseraLedger", targets: ["TesseraLedger"]),
        .library(name: "TesseraLedgerPostgres", targets: ["TesseraLedgerPostgres"]),
        .library(name: "TesseraProof", targets: ["TesseraProof"]),
        .library(name: "TesseraMarket", targets: ["TesseraMarket"]),
        .executable(name: "tessera", targets: ["tessera"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/JohnSundell/Plot", from: "0.14.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .target(name: "CEd25519Batch", linkerSettings: [.linkedLibrary("sodium")]),
        .target(name: "CAMXMatmul"),
        .target(name: "CVectorMath"),
        .target(name: "CWorkerPool"),

        // Layer 0: JSON and canonical JSON, policy files, hashes, keys and signatures,
        // ExpertID, parallel work, timers, the seeded generator, atomic files.
        .target(
            name: "TesseraCore",
            dependencies: ["CEd25519Batch", "CWorkerPool", .product(name: "Crypto", package: "swift-crypto"), "TOMLKit"]
        ),
        // Hugging Face tokenizer.json files, reproduced exactly (needs nothing but the core).
        .target(name: "TesseraTokenizers", dependencies: ["TesseraCore"]),
        // Layer 1: the model engine, and the ledger (which needs nothing of the engine).
        .target(name: "TesseraEngine", dependencies: ["TesseraCore", "CBLAS", "CAMXMatmul", "CVectorMath"]),
        .target(
            name: "TesseraLedger",
            dependencies: ["TesseraCore", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "GRDBSQLite", package: "GRDB.swift")]
        ),
        // The ledger's PostgreSQL store (the rules stay in TesseraLedger).
        .target(
            name: "TesseraLedgerPostgres",
            dependencies: ["TesseraCore", "TesseraLedger", .product(name: "PostgresNIO", package: "postgres-nio"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log")]
        ),
        // Blobs in an S3-compatible store (SigV4 over async-http-client).
        .target(
            name: "TesseraBlobs",
            dependencies: ["TesseraCore", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")]
        ),
        // Layer 2: expert shards, versions, deltas, bundles.
        .target(name: "TesseraLibrary", dependencies: ["TesseraCore", "TesseraEngine", "CZstd"]),
        // Layer 3: corpora, selection, training, Proof-of-Loss, merging.
        .target(name: "TesseraProof", dependencies: ["TesseraCore", "TesseraEngine", "TesseraLibrary", "TesseraTokenizers"]),
        // Layer 4: a market — set-up, the operator's and participants' workflows, the demo.
        .target(
            name: "TesseraMarket",
            dependencies: ["TesseraCore", "TesseraEngine", "TesseraLibrary", "TesseraLedger", "TesseraLedgerPostgres", "TesseraProof"]
        ),
        // Layer 5: the market on the network — the HTTP server over a market directory,
        // and the client that plays any participant against a server's URL.
        .target(
            name: "TesseraServer",
            dependencies: ["TesseraCore", "TesseraBlobs", "TesseraLedger", "TesseraLibrary", "TesseraProof", "TesseraMarket",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "Plot", package: "Plot")]
        ),
        .target(
            name: "TesseraClient",
            dependencies: ["TesseraCore", "TesseraLedger", "TesseraLibrary", "TesseraMarket",
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio")]
        ),
        // Synthetic workloads shared by the tests and the benchmarks.
        .target(
            name: "TesseraTestSupport",
            dependencies: ["TesseraCore", "TesseraEngine", "TesseraLibrary", "TesseraLedger", "TesseraLedgerPostgres", "TesseraMarket"]
        ),
        .target(
            name: "TesseraBenchmarks",
            dependencies: ["TesseraCore", "TesseraEngine", "TesseraLibrary", "TesseraLedger", "TesseraLedgerPostgres", "TesseraProof", "TesseraMarket",
                           "TesseraTestSupport", "CSodium", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio")]
        ),
        .executableTarget(
            name: "tessera",
            dependencies: [
                "TesseraCore", "TesseraEngine", "TesseraLibrary", "TesseraLedger", "TesseraProof", "TesseraMarket",
                "TesseraBenchmarks", "TesseraServer", "TesseraClient", "TesseraBlobs", "TesseraTokenizers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // jemalloc in place of glibc's malloc: the ledger's verify and append paths make
            // many small allocations on several threads, and measured about 20% less processor
            // time with it (ledger bench, alternating runs).
            linkerSettings: [.linkedLibrary("jemalloc")]
        ),
        // Every parser of untrusted bytes as a fuzz target (scripts/fuzz); built plainly, it
        // replays a corpus (Fuzz/corpus/TARGET), which the tests do.
        .executableTarget(
            name: "tessera-fuzz", dependencies: ["TesseraCore", "TesseraEngine", "TesseraLibrary", "TesseraLedger", "TesseraProof", "TesseraMarket", "TesseraTokenizers"],
            path: "Sources/TesseraFuzz"
        ),
        .testTarget(name: "TesseraCoreTests", dependencies: ["TesseraCore", "TesseraTestSupport", "CSodium"]),
        .testTarget(name: "TesseraTokenizersTests", dependencies: ["TesseraTokenizers", "TesseraCore", "TesseraTestSupport", "TesseraLibrary"]),
        .testTarget(name: "TesseraEngineTests", dependencies: ["TesseraEngine", "TesseraCore", "TesseraTestSupport"]),
        .testTarget(name: "TesseraLibraryTests", dependencies: ["TesseraLibrary", "TesseraEngine", "TesseraCore", "TesseraTestSupport"]),
        .testTarget(name: "TesseraProofTests", dependencies: ["TesseraProof", "TesseraLibrary", "TesseraEngine", "TesseraCore", "TesseraTestSupport", "TesseraBenchmarks", "TesseraTokenizers"]),
        .testTarget(
            name: "TesseraLedgerTests",
            dependencies: ["TesseraLedger", "TesseraLedgerPostgres", "TesseraCore", "TesseraTestSupport", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "TesseraMarketTests",
            dependencies: ["TesseraMarket", "TesseraProof", "TesseraLedger", "TesseraLibrary", "TesseraEngine", "TesseraCore", "TesseraTestSupport"]
        ),
        .testTarget(
            name: "TesseraServerTests",
            dependencies: ["TesseraServer", "TesseraClient", "TesseraBlobs", "TesseraLedgerPostgres", "TesseraMarket", "TesseraProof", "TesseraLedger", "TesseraLibrary", "TesseraEngine",
                           "TesseraCore", "TesseraTestSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
