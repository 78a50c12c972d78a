import Multiplex
import TunnelRuntime

/// The stable code of every failure a user can meet, chosen where the failure is made (each
/// `CommandFailure` carries one), with the fix the CLI prints under the sentence.
/// `docs/ERRORS.md` has an entry per code (what it means, the usual cause, the fix), and a test
/// keeps the two in step. Codes `T0xx` are found on this machine; `T1xx` are the gateway's
/// refusals, numbered as their wire codes (`docs/TUNNEL.md` §4: 0x101 is T101). Several call
/// sites share a code when the fix is the same.
public enum FailureCode: String, CaseIterable, Sendable {
    case configInvalid = "T001"
    case usage = "T002"
    case bundleInvalid = "T003"
    case localFile = "T004"
    case systemResource = "T005"
    case programMissing = "T006"
    case certificateMissing = "T010"
    case certificateExpired = "T011"
    case gatewayUnreachable = "T020"
    case gatewayCAMismatch = "T021"
    case clockSkew = "T022"
    case gatewayRequestFailed = "T023"
    case enrollmentRefused = "T024"
    case portInUse = "T030"
    case dataDirectoryInUse = "T031"
    case serviceNotDialable = "T040"
    case auditInvalid = "T050"
    case auditNotFound = "T051"
    case streamEnded = "T060"
    case unknownNode = "T101"
    case unknownService = "T102"
    case serviceUnreachable = "T103"
    case badRequest = "T104"
    case wrongRole = "T105"
    case replaced = "T106"
    case nodeDisconnected = "T107"
    case denied = "T108"
    case revoked = "T109"
    case auditUnavailable = "T10A"
    case nodeBusy = "T10B"

    public var code: String { rawValue }

    /// The code of a gateway refusal by its wire code (0x101 → T101); nil for codes that are
    /// not the tunnel's own.
    public init?(wire: ErrorCode) {
        self.init(rawValue: "T" + String(wire.rawValue, radix: 16, uppercase: true))
    }

    /// `fix: … (T020, docs/ERRORS.md#t020)`
    public var fixLine: String { "fix: \(fix) (\(code), docs/ERRORS.md#\(code.lowercased()))" }

    /// The short name `docs/ERRORS.md` gives the code.
    public var name: String { entry.name }
    /// What to do, in one line.
    public var fix: String { entry.fix }
}
