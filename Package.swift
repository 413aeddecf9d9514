// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "TesseraEngine", targets: ["TesseraEngine"]),
        .library(name: "TesseraLibrary", targets: ["TesseraLibrary"]),
        .library(name: "TesseraLedger", targets: ["TesseraLedger"]),
        .library(name: "TesseraProof", targets: ["TesseraProof"]),
        .library(name: "TesseraMarket", targets: ["TesseraMarket"]),
        .executable(name: "tessera", targets: ["tessera"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .target(
            name: "CEd25519Batch",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("sodium")]
        ),
        .target(
            name: "CAMXMatmul",
            cSettings: [.unsafeFlags(["-O2"])]
        ),
        .target(
            name: "CVectorMath",
            cSettings: [.unsafeFlags(["-O2"])]
        ),
        .target(
            name: "TesseraEngine",
            dependencies: ["CBLAS", "CAMXMatmul", "CVectorMath"],
            swiftSettings: [.unsafeFlags(["-O", "-target-cpu", "haswell"])]
        ),
        .target(
            name: "TesseraLibrary",
            dependencies: ["TesseraEngine", "CZstd", "CSodium", "CEd25519Batch", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "TesseraProof",
            dependencies: ["TesseraLibrary", "TesseraEngine", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "TesseraLedger",
            dependencies: ["TesseraLibrary", "TesseraEngine", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "GRDBSQLite", package: "GRDB.swift")]
        ),
        .target(
            name: "TesseraMarket",
            dependencies: ["TesseraProof", "TesseraLedger", "TesseraLibrary", "TesseraEngine"]
        ),
        .executableTarget(
            name: "tessera",
            dependencies: [
                "TesseraMarket",
                "TesseraEngine",
                "TesseraLibrary",
                "TesseraLedger",
                "TesseraProof",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // jemalloc in place of glibc's malloc: the ledger's verify and append paths make
            // many small allocations on several threads, and measured about 20% less processor
            // time with it (ledger bench, alternating runs).
            linkerSettings: [.linkedLibrary("jemalloc")]
        ),
        .testTarget(
            name: "TesseraEngineTests",
            dependencies: ["TesseraEngine"],
            exclude: ["Reference"]
        ),
        .testTarget(
            name: "TesseraLibraryTests",
            dependencies: ["TesseraLibrary", "TesseraEngine"]
        ),
        .testTarget(
            name: "TesseraProofTests",
            dependencies: ["TesseraProof", "TesseraEngine"]
        ),
        .testTarget(
            name: "TesseraMarketTests",
            dependencies: ["TesseraMarket", "TesseraProof", "TesseraLedger", "TesseraLibrary", "TesseraEngine"]
        ),
        .testTarget(
            name: "TesseraLedgerTests",
            dependencies: ["TesseraLedger", "TesseraLibrary", "TesseraEngine"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
