// swift-tools-version:6.0
import PackageDescription

/// The benchmarks, apart from the main manifest so the libraries it ships carry no benchmark
/// targets and no unsafe flags. They use the main package's products as any dependent would.
///   swift run -c release --package-path Benchmarks multiplex-bench [GiB] [runs] [streams,...]
///   swift run -c release --package-path Benchmarks audit-bench [records]
///   swift build -c release --package-path Benchmarks --product fleet-sim   (docs/BENCHMARKS.md, scripts/fleet-*.sh)
let package = Package(
    name: "tunnel-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "tunnel", path: ".."),
        // The Logger the runtime's connections take (already a dependency of the main package).
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // Latency histograms of the fleet simulator (README, Dependencies).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        /// Counts heap allocations by standing in for glibc's allocator entry points.
        .target(name: "CAllocationCounter", path: "CAllocationCounter"),
        .executableTarget(
            name: "multiplex-bench",
            dependencies: [.product(name: "Multiplex", package: "tunnel"), "CAllocationCounter"],
            path: "MultiplexBench"
        ),
        .executableTarget(
            name: "audit-bench",
            dependencies: [.product(name: "TunnelAudit", package: "tunnel")],
            path: "AuditBench"
        ),
        /// Thousands of virtual nodes and operators in one process, speaking the real protocol.
        .executableTarget(
            name: "fleet-sim",
            dependencies: [
                .product(name: "Multiplex", package: "tunnel"), .product(name: "TunnelIO", package: "tunnel"),
                .product(name: "TunnelTLS", package: "tunnel"), .product(name: "TunnelRuntime", package: "tunnel"),
                .product(name: "TunnelEdgeCore", package: "tunnel"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "FleetSim"
        ),
    ],
    swiftLanguageModes: [.v6]
)
