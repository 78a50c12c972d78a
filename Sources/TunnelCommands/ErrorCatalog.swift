import Multiplex
import TunnelRuntime

/// The errors a user can meet, each with a stable code, the sentence `tunnel` prints, and the
/// fix; `docs/ERRORS.md` has an entry per code (what it means, the usual cause, the fix), and a
/// test keeps the two in step. Codes `T0xx` are found on this machine; `T1xx` are the gateway's
/// refusals, numbered as their wire codes (`docs/PROTOCOL.md` §8: 0x101 is T101).
public struct KnownError: Sendable, Equatable {
    public let code: String
    public let name: String
    public let fix: String
    /// Texts of the one-line failure that identify this error (any one suffices).
    let signs: [String]

    /// `fix: … (T020, docs/ERRORS.md)`
    public var fixLine: String { "fix: \(fix) (\(code), docs/ERRORS.md#\(code.lowercased()))" }
}

public enum ErrorCatalog {
    public static let configInvalid = KnownError(
        code: "T001", name: "config-invalid",
        fix: "correct the named file, line or flag; `--check-config` shows every value and where it came from",
        signs: ["unknown key", "not valid YAML", "missing required setting", "config file"])
    public static let certificateMissing = KnownError(
        code: "T010", name: "certificate-missing",
        fix: "operators: `tunnel login BUNDLE` (an admin makes one with `tunnel user add`); nodes: enroll with `tunnel client --token TOKEN`",
        signs: ["run `tunnel login BUNDLE`", "enroll this node with a join token", "does not belong to"])
    public static let certificateExpired = KnownError(
        code: "T011", name: "certificate-expired",
        fix: "operators: ask an admin for a new bundle (`tunnel user add NAME`), and `tunnel renew` before expiry next time; nodes re-enroll by themselves when their client runs",
        signs: [" expired at ", "certificate has expired", "certificate expired"])
    public static let gatewayUnreachable = KnownError(
        code: "T020", name: "gateway-unreachable",
        fix: "check that the gateway runs (`systemctl status tunnel-gateway`) and that `gateway` in your config names its address and port",
        signs: ["connection refused", "cannot connect to", "timed out connecting", "no answer from"])
    public static let gatewayCAMismatch = KnownError(
        code: "T021", name: "gateway-ca-mismatch",
        fix: "the gateway-ca file must be the CA of this gateway: install a fresh bundle (`tunnel login`), or take gateway-ca.crt from the gateway's pki-dir",
        signs: ["certificate verify failed", "unable to get local issuer", "self-signed certificate in certificate chain"])
    public static let clockSkew = KnownError(
        code: "T022", name: "clock-skew",
        fix: "set this machine's clock (systemd-timesyncd or chrony); certificates are checked against it",
        signs: ["is valid only from", "is this machine's clock right"])
    public static let portInUse = KnownError(
        code: "T030", name: "port-in-use",
        fix: "stop what listens there, or choose another address (--listen)",
        signs: ["address already in use", " is in use, most likely"])
    public static let serviceNotDialable = KnownError(
        code: "T040", name: "service-not-dialable",
        fix: "start the service on the node, or correct its HOST:PORT in the client's services",
        signs: ["could not reach its"])
    public static let auditInvalid = KnownError(
        code: "T050", name: "audit-invalid",
        fix: "keep the copy as evidence; the named record is where the log stops being trustworthy (docs/AUDIT.md §7)",
        signs: ["FAILED:"])
    public static let unknownNode = wire(TunnelErrorCode.unknownNode, "unknown-node",
        "check the name with `tunnel nodes`; on the node, `systemctl status tunnel-client` and `tunnel doctor --node`",
        ["is not connected to the gateway"])
    public static let unknownService = wire(TunnelErrorCode.unknownService, "unknown-service",
        "`tunnel nodes` lists each node's services; add it to the node's `services` (or shell-user, log-sources)",
        ["offers no service"])
    public static let denied = wire(TunnelErrorCode.denied, "denied",
        "ask an admin for a role that allows this service on this node (`tunnel policy show`)",
        ["not allowed", "denied"])
    public static let revoked = wire(TunnelErrorCode.revoked, "revoked",
        "your identity was revoked or expired unrenewed: ask an admin for a new bundle (operators) or a new token (nodes)",
        ["revoked"])
    public static let auditUnavailable = wire(TunnelErrorCode.auditUnavailable, "audit-unavailable",
        "on the gateway: free disk space or fix the audit directory; streams resume once the log can be written",
        ["audit log", "cannot write its audit"])

    public static let all: [KnownError] = [
        configInvalid, certificateMissing, certificateExpired, gatewayUnreachable, gatewayCAMismatch, clockSkew, portInUse,
        serviceNotDialable, auditInvalid, unknownNode, unknownService, denied, revoked, auditUnavailable,
    ]

    /// The entry for a gateway refusal, coded by its wire code (0x101 → T101).
    private static func wire(_ code: ErrorCode, _ name: String, _ fix: String, _ signs: [String]) -> KnownError {
        KnownError(code: "T" + String(code.rawValue, radix: 16, uppercase: true), name: name, fix: fix, signs: signs)
    }

    /// The known error a one-line failure is, if any: the first entry with a sign in it.
    public static func classify(_ message: String) -> KnownError? {
        all.first { entry in entry.signs.contains { message.contains($0) } }
    }
}
