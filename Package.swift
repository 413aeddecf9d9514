// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "TesseraEngine", targets: ["TesseraEngine"]),
        .executable(name: "tessera", targets: ["tessera"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .target(
            name: "TesseraEngine",
            dependencies: ["CBLAS"],
            swiftSettings: [.unsafeFlags(["-O", "-target-cpu", "haswell"])]
        ),
        .executableTarget(
            name: "tessera",
            dependencies: [
                "TesseraEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "TesseraEngineTests",
            dependencies: ["TesseraEngine"],
            exclude: ["Reference"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
