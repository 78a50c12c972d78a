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
        .testTarget(name: "MultiplexTests", dependencies: ["Multiplex"]),
    ],
    swiftLanguageModes: [.v6]
)
