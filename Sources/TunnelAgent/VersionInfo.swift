import TunnelIO
import TunnelRuntime
import TunnelTLS

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What this build of `tunnel` is: `tunnel --version`, `tunnel version [--json]`, the gateway's
/// first log line and the version a node reports. The shape of the JSON is in docs/JSON.md.
public struct VersionInfo: Codable, Equatable, Sendable {
    public var version: String
    /// The git commit built (12 hex digits), or "unknown" for a build outside git.
    public var commit: String
    /// The Swift compiler that built it.
    public var swift: String
    /// The OpenSSL and libuv it runs with, as the libraries report themselves.
    public var openssl: String
    public var libuv: String

    public static let current = VersionInfo(
        version: TunnelProtocol.softwareVersion, commit: sourceCommit, swift: compilerVersion,
        openssl: OpenSSLLibrary.version, libuv: EventLoop.libuvVersion)

    /// What a node reports to the gateway: `0.1.0+3f2a9c1d7e4b` (semantic versioning's build metadata).
    public var reported: String { commit == "unknown" ? version : "\(version)+\(commit)" }

    /// `tunnel 0.1.0 (commit 3f2a9c1d7e4b; Swift 6.3, OpenSSL 3.0.15 3 Sep 2024, libuv 1.44.2)`
    public var line: String { "tunnel \(version) (commit \(commit); Swift \(swift), \(openssl), libuv \(libuv))" }

    /// The compiler's version, to the minor release; the language has no run-time query for it.
    package static var compilerVersion: String {
        #if compiler(>=6.5)
            ">=6.5"
        #elseif compiler(>=6.4)
            "6.4"
        #elseif compiler(>=6.3)
            "6.3"
        #elseif compiler(>=6.2)
            "6.2"
        #elseif compiler(>=6.1)
            "6.1"
        #else
            "6.0"
        #endif
    }

    /// One JSON object on one line, keys sorted.
    public var json: String { jsonText(self) }
}
