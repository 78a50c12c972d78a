// swift-tools-version:6.0
import PackageDescription

/// Dynamic exclusivity checks cost the Multiplex session about a third of its in-memory speed
/// (docs/BENCHMARKS.md), and the session is a single-threaded state machine the compiler checks
/// statically. Turning them off takes an unsafe flag, which would make every library product
/// unusable as a dependency; so only builds that ask for it (TUNNEL_UNCHECKED_EXCLUSIVITY=1: the
/// shipped release binary, the benchmarks) get it, for Multiplex alone. The tests run with the checks on.
let multiplexSettings: [SwiftSetting] =
    Context.environment["TUNNEL_UNCHECKED_EXCLUSIVITY"] == "1"
    ? [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))] : []

let package = Package(
    name: "tunnel",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Multiplex", targets: ["Multiplex"]),
        .library(name: "TunnelIO", targets: ["TunnelIO"]),
        .library(name: "TunnelTLS", targets: ["TunnelTLS"]),
        /// The mux-over-TLS-over-socket runtime and the tunnel's messages, for the fleet simulator.
        .library(name: "TunnelRuntime", targets: ["TunnelRuntime"]),
        /// The node agent's decisions and the reconnect schedules, for the fleet simulator.
        .library(name: "TunnelEdgeCore", targets: ["TunnelEdgeCore"]),
        /// The audit log and its offline verifier, for tools of an auditor's own (and audit-bench).
        .library(name: "TunnelAudit", targets: ["TunnelAudit"]),
        .executable(name: "tunnel", targets: ["tunnel"]),
        /// The edge agent alone, for nodes: `tunnel client` without Foundation (docs/BENCHMARKS.md).
        .executable(name: "tunnel-client", targets: ["tunnel-client"]),
    ],
    dependencies: [
        // Structured logging with a Logger passed into libraries, as the Swift server ecosystem does.
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // Subcommands, flags and help text for the one `tunnel` binary.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // YAML config files (/etc/tunnel/*.yaml), parsed strictly so unknown keys can be refused.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // The Prometheus exposition format and its metric types (README, Dependencies).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        /// The wire protocol, sans-IO: no Foundation, no clock, no sockets, no C libraries.
        /// Unsafe flags only on request: see `multiplexSettings`.
        .target(name: "Multiplex", swiftSettings: multiplexSettings),
        /// libuv from Debian's libuv1-dev, with shims for what Swift cannot call directly.
        .systemLibrary(name: "CLibUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        /// Thin, loop-confined libuv wrappers: loop, TCP, timers, signals, DNS. No protocol knowledge.
        .target(name: "TunnelIO", dependencies: ["CLibUV"]),
        .testTarget(name: "TunnelIOTests", dependencies: ["TunnelIO"]),
        /// nodejs/http-parser from Debian's libhttp-parser-dev (no pkg-config file, so a plain modulemap).
        .systemLibrary(name: "CHTTPParser", providers: [.apt(["libhttp-parser-dev"])]),
        /// HTTP/1.x requests and responses, sans-IO: bytes in, heads, bodies and upgrades out.
        .target(name: "TunnelHTTP", dependencies: ["CHTTPParser"]),
        .testTarget(name: "TunnelHTTPTests", dependencies: ["TunnelHTTP"]),
        /// The one ASCII rule per kind of name (node, service, label, token id, user) and the escaping
        /// of text from others for human output. No dependencies, so every layer can share it.
        .target(name: "TunnelText"),
        .testTarget(name: "TunnelTextTests", dependencies: ["TunnelText"]),
        /// The auditor's web console (`tunnel audit serve`): pages over an audit log, served on the
        /// libuv loop. Linked into the `tunnel` binary through TunnelCommands, not into TunnelClient.
        .target(
            name: "TunnelConsole",
            dependencies: ["TunnelHTTPServer", "TunnelHTTP", "TunnelIO", "TunnelAudit", "TunnelTLS"]),
        /// A small read-only HTTP/1.1 server on the libuv loop, shared by the console and the metrics endpoint.
        .target(name: "TunnelHTTPServer", dependencies: ["TunnelHTTP", "TunnelIO"]),
        /// Prometheus metrics of the gateway and the client, and the `--metrics-listen` endpoint.
        .target(
            name: "TunnelMetrics",
            dependencies: [
                "TunnelHTTPServer", "TunnelHTTP", "TunnelIO", .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .testTarget(name: "TunnelMetricsTests", dependencies: ["TunnelMetrics", "TunnelIO", "TunnelHTTP"]),
        .testTarget(
            name: "TunnelConsoleTests", dependencies: ["TunnelConsole", "TunnelHTTP", "TunnelAudit", "TunnelRuntime"]),
        /// OpenSSL 3 from Debian's libssl-dev, with prefixed shims for its macros.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        /// TLS 1.3 over memory BIOs (ciphertext in, plaintext out) and the X.509 work: keys, CSRs,
        /// CAs, identities from certificates, durable key files.
        .target(name: "TunnelTLS", dependencies: ["COpenSSL", "TunnelText"]),
        .testTarget(name: "TunnelTLSTests", dependencies: ["TunnelTLS", "COpenSSL"]),
        /// The application protocol, sans IO: the tunnel's requests and replies, the fleet's
        /// admin messages, the audit reads and the shell's frames, as values and bytes.
        .target(name: "TunnelWire", dependencies: ["Multiplex", "TunnelTLS", "TunnelText"]),
        /// The shared runtime: a mux session over TLS over a socket, splices and relays of streams.
        .target(
            name: "TunnelRuntime",
            dependencies: [
                "Multiplex", "TunnelIO", "TunnelTLS", "TunnelText", "TunnelWire",
                .product(name: "Logging", package: "swift-log"),
            ]),
        /// SQLite from Debian's libsqlite3-dev, for the gateway's embedded state database.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        /// libpq from Debian's libpq-dev, for the shared PostgreSQL store of a gateway cluster.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        /// The fleet's durable state (nodes, join tokens, users, revocations) behind a small
        /// storage protocol: SQLite for one gateway, PostgreSQL shared by the replicas of a cluster.
        .target(name: "TunnelState", dependencies: ["CSQLite", "CLibPQ", "TunnelWire"]),
        /// Starts a throwaway PostgreSQL server from Debian's binaries for the tests that need one.
        .target(name: "PostgresTestServer", path: "Tests/PostgresTestServer"),
        .testTarget(
            name: "TunnelStateTests", dependencies: ["TunnelState", "TunnelWire", "CSQLite", "PostgresTestServer"]),
        /// Roles → services on nodes chosen by name and labels: parsed strictly, checked per stream.
        .target(name: "TunnelPolicy", dependencies: ["TunnelText", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "TunnelPolicyTests", dependencies: ["TunnelPolicy"]),
        /// The audit trail: hash-chained JSON Lines segments with Ed25519-signed checkpoints, crash
        /// recovery, and the offline verifier auditors run (`docs/AUDIT.md`). On TunnelTLS's
        /// OpenSSL primitives (error queue, SHA-256, durable files), so the verifier still needs
        /// nothing but OpenSSL.
        .target(name: "TunnelAudit", dependencies: ["COpenSSL", "TunnelTLS"]),
        .testTarget(name: "TunnelAuditTests", dependencies: ["TunnelAudit", "TunnelTLS"]),
        /// The gateway's decisions, sans IO: connections classified, node sessions with epochs,
        /// certificate deadlines. Events and `now` in, intents out; no TunnelIO, no OpenSSL import.
        .target(
            name: "TunnelGatewayCore",
            dependencies: [
                "Multiplex", "TunnelWire", "TunnelPolicy", "TunnelAudit", "TunnelText",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "TunnelGatewayCoreTests",
            dependencies: [
                "TunnelGatewayCore", "Multiplex", "TunnelAudit", "TunnelWire",
                .product(name: "Logging", package: "swift-log"),
            ]),
        /// The gateway's IO shell over `TunnelGatewayCore`, and the fleet authority: enrollment and
        /// renewal, policy checks, relays. A library so tests drive it.
        .target(
            name: "TunnelGateway",
            dependencies: [
                "TunnelGatewayCore", "TunnelRuntime", "TunnelEdgeCore", "TunnelState", "TunnelPolicy", "TunnelAudit",
                "TunnelText",
                "TunnelKube",
                "TunnelMetrics", .product(name: "Logging", package: "swift-log"),
            ]),
        /// Pseudo-terminals and login shells, in C because the child between fork and exec may
        /// run only async-signal-safe code; and the operator's local terminal (raw mode, size).
        .target(name: "CPseudoTerminal"),
        /// Kubernetes by impersonation, sans-IO: following an HTTP connection from both ends, the
        /// node's rewrite of each request head, and what each request asks for (for the audit).
        .target(name: "TunnelKube", dependencies: ["TunnelHTTP"]),
        .testTarget(name: "TunnelKubeTests", dependencies: ["TunnelKube", "TunnelHTTP"]),
        /// The node agent's decisions, sans-IO: which replica to dial and when (backoff, flaps,
        /// failover), renewal, re-enrollment, the clock. No TunnelIO, no TLS, no Foundation.
        .target(name: "TunnelEdgeCore", dependencies: ["Multiplex"]),
        .testTarget(name: "TunnelEdgeCoreTests", dependencies: ["TunnelEdgeCore", "Multiplex"]),
        /// The edge client's IO: dial out, reconnect, serve the configured services, as its core decides.
        .target(
            name: "TunnelClient",
            dependencies: [
                "TunnelEdgeCore", "TunnelRuntime", "TunnelKube", "CPseudoTerminal", "TunnelText", "TunnelMetrics",
                .product(name: "Logging", package: "swift-log"),
            ]),
        /// The operator's side: the connection to the gateway with an operator certificate, the
        /// local terminal, and the streams behind `tunnel shell`, `proxy`, `forward`, `logs`,
        /// `kube-proxy` and `kubectl`, run on a loop of its own (`OperatorSession`).
        .target(
            name: "TunnelOperator",
            dependencies: [
                "TunnelClient", "TunnelRuntime", "TunnelWire", "TunnelIO", "TunnelTLS", "TunnelText", "Multiplex",
                "CPseudoTerminal", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "TunnelIntegrationTests",
            dependencies: [
                "TunnelGateway", "TunnelGatewayCore", "TunnelClient", "TunnelEdgeCore", "TunnelOperator", "TunnelState",
                "TunnelPolicy", "TunnelAudit", "TunnelRuntime", "TunnelIO", "TunnelTLS", "TunnelText", "Multiplex",
                "PostgresTestServer",
                .product(name: "Logging", package: "swift-log"),
            ]),
        /// libyaml from Debian's libyaml-dev, under TunnelYAML.
        .systemLibrary(name: "CLibYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        /// Small YAML files (settings, bundles, kubeconfigs) composed into nodes with line numbers,
        /// bounded, without Foundation: what the edge agent reads its config with.
        .target(name: "TunnelYAML", dependencies: ["CLibYAML"]),
        .testTarget(name: "TunnelYAMLTests", dependencies: ["TunnelYAML"]),
        /// What the edge agent's command line needs and every other command builds on: settings
        /// (schemas, YAML, TUNNEL_* variables, flags), failures and their codes, the log format, the
        /// version, and `tunnel client` itself with its own flag parser. No Foundation
        /// (FoundationEssentials at most) and no swift-argument-parser, so `tunnel-client` links
        /// no Foundation, ICU, SQLite, libpq or argument-parser.
        .target(
            name: "TunnelAgent",
            dependencies: [
                "TunnelClient", "TunnelEdgeCore", "TunnelRuntime", "TunnelIO", "TunnelTLS", "TunnelText",
                "TunnelMetrics",
                "TunnelYAML", "Multiplex", .product(name: "Logging", package: "swift-log"),
            ], plugins: ["SourceCommit"]),
        /// The edge agent's executable: `tunnel client` alone.
        .executableTarget(name: "tunnel-client", dependencies: ["TunnelAgent"]),
        /// Every other subcommand: offline PKI, login, the gateway, operator and auditor commands,
        /// on TunnelAgent's settings. A library so tests can drive it.
        .target(
            name: "TunnelCommands",
            dependencies: [
                "TunnelAgent", "TunnelGateway", "TunnelClient", "TunnelOperator", "TunnelState", "TunnelPolicy",
                "TunnelAudit",
                "TunnelRuntime", "TunnelTLS", "TunnelText", "TunnelConsole", "TunnelMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        /// Writes the git commit being built into TunnelAgent (`tunnel version`); "unknown" outside git.
        .plugin(name: "SourceCommit", capability: .buildTool()),
        /// The thin executable: only the entry point.
        .executableTarget(name: "tunnel", dependencies: ["TunnelCommands"]),
        .testTarget(
            name: "TunnelCommandsTests",
            dependencies: [
                "TunnelCommands", "TunnelOperator", "TunnelTLS", "TunnelText", .product(name: "Yams", package: "Yams"),
            ]),
        /// Fuzz-target bodies, shared by the libFuzzer builds (`scripts/fuzz.sh`) and the tests
        /// that replay the corpus and every committed crasher.
        .target(name: "MultiplexFuzzing", dependencies: ["Multiplex"]),
        .testTarget(name: "MultiplexTests", dependencies: ["Multiplex", "MultiplexFuzzing"]),
    ],
    swiftLanguageModes: [.v6]
)
