// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "tunnel",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Multiplex", targets: ["Multiplex"]),
    ],
    targets: [
        /// The wire protocol, sans-IO: no Foundation, no clock, no sockets, no C libraries.
        .target(name: "Multiplex"),
        /// Fuzz-target bodies, shared by the libFuzzer builds (`scripts/fuzz.sh`) and the tests
        /// that replay the corpus and every committed crasher.
        .target(name: "MultiplexFuzzing", dependencies: ["Multiplex"]),
        /// Counts heap allocations for the benchmarks by standing in for glibc's allocator entry points.
        .target(name: "CAllocationCounter", path: "Benchmarks/CAllocationCounter"),
        .executableTarget(
            name: "multiplex-bench",
            dependencies: ["Multiplex", "CAllocationCounter"],
            path: "Benchmarks/MultiplexBench"
        ),
        .testTarget(name: "MultiplexTests", dependencies: ["Multiplex", "MultiplexFuzzing"]),
    ],
    swiftLanguageModes: [.v6]
)
