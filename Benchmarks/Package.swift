// swift-tools-version:6.0
import PackageDescription

/// The benchmarks, apart from the main manifest so the libraries it ships carry no benchmark
/// targets and no unsafe flags. They use the main package's products as any dependent would.
///   swift run -c release --package-path Benchmarks multiplex-bench [GiB] [runs] [streams,...]
///   swift run -c release --package-path Benchmarks audit-bench [records]
let package = Package(
    name: "tunnel-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "tunnel", path: ".."),
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
    ],
    swiftLanguageModes: [.v6]
)
