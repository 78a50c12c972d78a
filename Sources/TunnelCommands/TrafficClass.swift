import ArgumentParser
import Foundation

/// The scheduling class a stream asks for in its OPEN (`docs/PROTOCOL.md` §6.4): interactive
/// frames go ahead of bulk ones at every hop, operator → gateway → node and back. The class is
/// chosen by how the stream is used, not by the service's name: an scp through `ssh` moves files,
/// a shell is somebody typing.
enum TrafficClass: String, ExpressibleByArgument, CaseIterable {
    case interactive
    case bulk

    var isInteractive: Bool { self == .interactive }

    /// The class of a `tunnel proxy` nobody chose one for: interactive only when a person types
    /// into its caller. Under ssh's ProxyCommand the caller is ssh, which reads a terminal for an
    /// interactive login and a pipe under scp, rsync, sftp or git. `callerInput` is where the
    /// caller's stdin leads (a `/proc/PID/fd/0` link, nil when it cannot be read).
    static func forProxy(callerInput: String?) -> TrafficClass {
        guard let callerInput else { return .bulk }
        return callerInput.hasPrefix("/dev/pts/") || callerInput.hasPrefix("/dev/tty") ? .interactive : .bulk
    }

    /// Where the stdin of this process's parent leads (`/dev/pts/3`, `pipe:[123]`), if readable.
    static func parentInput() -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(getppid())/fd/0")
    }
}

/// `--class interactive|bulk`: overrides the class a command picks from its use.
struct TrafficClassOption: ParsableArguments {
    @Option(
        name: .customLong("class"),
        help: ArgumentHelp(
            "Scheduling class of the stream: interactive goes ahead of bulk (default: by use)",
            valueName: "interactive|bulk"))
    var trafficClass: TrafficClass?

    /// The chosen class, or `byUse` when none was given.
    func resolved(byUse: @autoclosure () -> TrafficClass) -> TrafficClass {
        trafficClass ?? byUse()
    }
}
