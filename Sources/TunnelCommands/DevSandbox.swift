import Foundation
import Glibc
import Logging
import TunnelClient

/// What `tunnel dev` adds so that every command it prints works on a bare machine: a demo log
/// directory for the node's `logs` service, and, when nothing answers on the ssh target, a
/// private sshd from the system's OpenSSH with keys of its own. Everything lives under the dev
/// directory and is made once, so a second run finds it again.
enum DevSandbox {
    /// The demo log source the node serves (`tunnel logs dev-node app`).
    static let logSourceName = "app"

    /// Writes `DIR/logs/app.log` once and returns the log root and the source.
    static func demoLogs(directory: String) throws(CommandFailure) -> (root: String, source: LogSource) {
        try makePrivateDirectory("\(directory)/logs")
        // The log service compares paths with symlinks resolved (/tmp may be a link).
        let root = URL(fileURLWithPath: "\(directory)/logs").resolvingSymlinksInPath().path
        let file = "\(root)/app.log"
        if !FileManager.default.fileExists(atPath: file) {
            let lines = [
                "sandbox started: this is the demo log of `tunnel dev`",
                "press-3: cycle 1041 done in 2.4 s",
                "press-3: cycle 1042 done in 2.5 s",
                "press-3: WARNING hydraulic pressure 182 bar (limit 180)",
                "press-3: cycle 1043 done in 2.4 s",
            ]
            _ = try writeFile(
                file, Array(lines.map { "\(isoDate(Int64(Date().timeIntervalSince1970))) \($0)\n" }.joined().utf8),
                0o644, "demo log")
        }
        do {
            return (root, try LogSource.parse(file))
        } catch {
            throw .failed("the demo log \(file) cannot be a log source: \(error.message)", .localFile)
        }
    }

    /// Whether something accepts a TCP connection at `address` within half a second.
    static func answers(_ address: HostPort) -> Bool {
        Reachability.problem(address, timeoutMilliseconds: 500) == nil
    }

    /// A free loopback port, as the kernel hands one out; sshd then binds it (a tiny race that a
    /// development sandbox can live with: sshd says so in its log, and `tunnel dev` in its own).
    static func freeLoopbackPort() -> UInt16? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        return bound ? UInt16(bigEndian: address.sin_port) : nil
    }
}

/// The private sshd of `tunnel dev`: Debian's OpenSSH server run as the current user on a
/// loopback port, with a throwaway host key and one sandbox user key in `DIR/sshd/`. It accepts
/// only that key, only for the current user, only from loopback. Loop-confined.
final class DevSSHServer {
    /// Found on `PATH`, then in Debian's places (`/usr/sbin` is not on a user's `PATH`); nil
    /// when OpenSSH is not installed.
    static var program: String? { executable("sshd", also: "/usr/sbin") }
    static var keygen: String? { executable("ssh-keygen", also: "/usr/bin") }

    /// The first executable `name` in `PATH`'s directories, then in `fallback`.
    static func executable(_ name: String, also fallback: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init).filter { $0.hasPrefix("/") } + [fallback]
        return directories.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    struct Files {
        let directory: String
        var hostKey: String { "\(directory)/ssh_host_ed25519_key" }
        var userKey: String { "\(directory)/id_ed25519" }
        var authorizedKeys: String { "\(directory)/authorized_keys" }
        var knownHosts: String { "\(directory)/known_hosts" }
        var config: String { "\(directory)/sshd_config" }
        var pidFile: String { "\(directory)/sshd.pid" }
        var log: String { "\(directory)/sshd.log" }
    }

    let files: Files
    let port: UInt16
    private let process: LoggedChild

    /// Why the private sshd cannot run here, with what to install; nil when it can.
    static func unavailableReason() -> String? {
        program != nil && keygen != nil ? nil : missingOpenSSH
    }
    static let missingOpenSSH =
        "OpenSSH is not installed (no sshd or ssh-keygen on PATH, in /usr/sbin or /usr/bin): apt-get install openssh-server openssh-client"

    /// Makes the keys (once), writes the configuration for this run's port and starts sshd.
    /// `hostAlias` is the name ssh checks the host key under (`dev-node.tunnel`).
    init(directory: String, hostAlias: String, launcher: ChildLauncher, logger: Logger) throws(CommandFailure) {
        guard let sshd = Self.program, let keygen = Self.keygen else {
            throw .failed(Self.missingOpenSSH, .programMissing)
        }
        files = Files(directory: directory)
        try makePrivateDirectory(directory)
        // sshd run by root insists on its privilege-separation directory, which the system's
        // sshd.service would make at boot; a machine that never ran it lacks it.
        if geteuid() == 0, !FileManager.default.fileExists(atPath: "/run/sshd") { mkdir("/run/sshd", 0o755) }
        try Self.makeKeys(files, hostAlias: hostAlias, keygen: keygen)
        Self.stopStale(files)
        guard let port = DevSandbox.freeLoopbackPort() else {
            throw .failed("cannot find a free loopback port for the private sshd", .systemResource)
        }
        self.port = port
        _ = try writeFile(
            files.config, Array(Self.configuration(files, port: port).utf8), 0o600, "private sshd configuration")
        do {
            process = try launcher.start([sshd, "-D", "-e", "-f", files.config], log: files.log) { status, signal in
                logger.info("private sshd ended", metadata: ["exit_status": "\(status)", "signal": "\(signal)"])
            }
        } catch {
            switch error {
            case .log(let path, let reason): throw .failed("cannot open \(path): \(reason)", .localFile)
            case .program(let error): throw .failed("cannot start \(sshd): \(error)", .programMissing)
            }
        }
    }

    /// Ends sshd (its exit then closes the process handle) and the log file.
    func stop() {
        process.stop()
    }

    /// Waits, at most `seconds`, until sshd accepts connections. It blocks the loop, which is
    /// still starting up then (nothing is waiting on it yet); sshd has no readiness signal.
    func waitUntilListening(seconds: Int) -> Bool {
        for _ in 0..<(seconds * 20) {
            if DevSandbox.answers(HostPort(host: "127.0.0.1", port: port)) { return true }
            usleep(50_000)
        }
        return false
    }

    private static func makeKeys(_ files: Files, hostAlias: String, keygen: String) throws(CommandFailure) {
        for (key, comment) in [(files.hostKey, "tunnel dev host key"), (files.userKey, "tunnel dev sandbox user")]
        where !FileManager.default.fileExists(atPath: key) {
            try run(keygen, ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key])
        }
        func publicKey(_ key: String) throws(CommandFailure) -> String {
            guard let text = try? String(contentsOfFile: "\(key).pub", encoding: .utf8) else {
                throw .failed("cannot read \(key).pub", .localFile)
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try writeFile(
            files.authorizedKeys, Array("\(try publicKey(files.userKey))\n".utf8), 0o600, "sandbox user key")
        _ = try writeFile(
            files.knownHosts, Array("\(hostAlias) \(try publicKey(files.hostKey))\n".utf8), 0o644, "dev host key")
    }

    /// A sshd left behind by a `tunnel dev` that was killed: ended if its pid file still names
    /// a sshd started with this directory's configuration.
    private static func stopStale(_ files: Files) {
        guard let text = try? String(contentsOfFile: files.pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let commandLine = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
            commandLine.contains(files.config)
        else { return }
        kill(pid, SIGTERM)
    }

    /// Only the sandbox key, only this user, only loopback. StrictModes is off because the dev
    /// directory may sit in a world-writable place such as /tmp; PAM is off because an
    /// unprivileged sshd cannot use it. OpenSSH 9's scp speaks SFTP, hence the subsystem.
    private static func configuration(_ files: Files, port: UInt16) -> String {
        let user = String(cString: getpwuid(geteuid()).pointee.pw_name)
        return """
            # Written by `tunnel dev` for its private sshd; rewritten at every start.
            ListenAddress 127.0.0.1:\(port)
            HostKey "\(files.hostKey)"
            PidFile "\(files.pidFile)"
            AuthorizedKeysFile "\(files.authorizedKeys)"
            AllowUsers \(user)
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            PermitRootLogin prohibit-password
            Subsystem sftp internal-sftp

            """
    }

    /// Runs a program to its end; throws its output when it fails.
    private static func run(_ program: String, _ arguments: [String]) throws(CommandFailure) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch {
            throw .failed("cannot run \(program): \(error.localizedDescription)", .programMissing)
        }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw .failed(
                "\(program) \(arguments.joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))",
                .systemResource)
        }
    }
}
