import ArgumentParser
import Foundation
import Logging
import TunnelClient
import TunnelOperator
import TunnelRuntime
import TunnelTLS

/// One line of `tunnel doctor`: what was checked and how it went, with the fix when it failed.
struct DoctorCheck: Equatable {
    let name: String
    let detail: String
    /// nil when the check passed.
    let failure: FailureCode?

    static func ok(_ name: String, _ detail: String) -> DoctorCheck {
        DoctorCheck(name: name, detail: detail, failure: nil)
    }
    static func fail(_ name: String, _ detail: String, _ code: FailureCode) -> DoctorCheck {
        DoctorCheck(name: name, detail: detail, failure: code)
    }

    var lines: [String] {
        guard let failure else { return ["ok    \(name): \(detail)"] }
        return ["FAIL  \(name): \(detail)", "      \(failure.fixLine)"]
    }
}

/// `tunnel doctor`: checks, one line each, that this machine can do its part, and says how to fix
/// what it cannot. On an operator's machine: the configuration, the certificate and its time
/// left, the gateway answering, its certificate signed by the pinned CA and ours accepted, and the
/// clock against the gateway's. On a node (`--node`): the client's configuration, its
/// certificate, the gateway and the pin, its clock against the gateway's (asked on the
/// enrollment door, which checks no dates), and every configured service dialable.
public struct DoctorCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract:
            "Check this machine's configuration, certificate, gateway, clock and services; say how to fix each failure.",
        discussion: "Exits 1 when any check fails. Every failure has a code explained in docs/ERRORS.md.")

    @OptionGroup var options: OperatorOptions
    @Flag(help: "Check this machine as a node, with the client's configuration") var node = false
    @Option(help: "The client's config file, with --node (default /etc/tunnel/client.yaml)") var clientConfig: String?

    public init() {}

    public func run() throws {
        let checks = node ? NodeDoctor(configPath: clientConfig).run() : OperatorDoctor(options: options).run()
        for check in checks { for line in check.lines { print(line) } }
        let failed = checks.filter { $0.failure != nil }.count
        print(failed == 0 ? "all \(checks.count) checks passed" : "\(failed) of \(checks.count) checks failed")
        if failed > 0 { throw ExitCode(1) }
    }
}

/// The checks every role shares, in the order they depend on each other.
enum DoctorSteps {
    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    /// The certificate's dates against this clock: valid, how long it has left.
    static func certificate(_ path: String, role: String) -> DoctorCheck {
        guard let bytes = try? DurableFile.read(path: path),
            let certificate = try? Certificate.fromPEM(bytes, source: path)
        else {
            return .fail("certificate", "cannot read the \(role) certificate \(path)", .certificateMissing)
        }
        if now >= certificate.notAfter {
            return .fail("certificate", "\(path) expired at \(isoDate(certificate.notAfter))", .certificateExpired)
        }
        if now < certificate.notBefore {
            return .fail(
                "certificate",
                "\(path) is valid only from \(isoDate(certificate.notBefore)), after this machine's clock (\(isoDate(now)))",
                .clockSkew)
        }
        return .ok(
            "certificate",
            "valid until \(isoDate(certificate.notAfter)) (\(durationText(certificate.notAfter - now)) left)")
    }

    static func reachable(_ address: HostPort) -> DoctorCheck {
        if let problem = Reachability.problem(address) {
            return .fail("gateway", "\(address): \(problem)", .gatewayUnreachable)
        }
        return .ok("gateway", "\(address) accepts connections")
    }

    /// A connection failure as a check: the pin, the certificate, or the gateway.
    static func connectionFailure(_ failure: CommandFailure) -> DoctorCheck {
        .fail(failure.code == .gatewayCAMismatch ? "gateway CA" : "gateway identity", failure.message, failure.code)
    }

    /// `11h 58m`, `3d 4h`
    /// Beyond this, the gateway and this machine disagree enough to trouble certificates.
    static let allowedSkewSeconds: Int64 = 60

    /// This machine's clock against the gateway's, read when a question sent at `sentAt` was answered.
    static func clock(gatewayTime: Int64?, sentAt: Int64) -> DoctorCheck {
        guard let gatewayTime, gatewayTime > 0 else {
            return .ok("clock", "not measured: this gateway does not say its time")
        }
        let skew = gatewayTime - sentAt
        if abs(skew) > allowedSkewSeconds {
            return .fail(
                "clock", "this machine's clock is \(abs(skew)) s \(skew > 0 ? "behind" : "ahead of") the gateway's",
                .clockSkew)
        }
        return .ok("clock", "within \(allowedSkewSeconds) s of the gateway's (\(skew >= 0 ? "+" : "")\(skew) s)")
    }

    static func durationText(_ seconds: Int64) -> String {
        seconds >= 86_400
            ? "\(seconds / 86_400)d \(seconds % 86_400 / 3600)h" : "\(seconds / 3600)h \(seconds % 3600 / 60)m"
    }
}

/// The operator's checks.
struct OperatorDoctor {
    let options: OperatorOptions

    func run() -> [DoctorCheck] {
        let settings: OperatorSettings
        do {
            settings = try options.settings()
        } catch {
            return [.fail("configuration", error.message, .configInvalid)]
        }
        var checks = [
            DoctorCheck.ok("configuration", "\(options.resolvedConfigPath()) is valid; gateway \(settings.gateway)")
        ]
        checks.append(DoctorSteps.certificate(settings.cert, role: "operator"))
        guard checks.last?.failure == nil else { return checks }
        checks.append(DoctorSteps.reachable(settings.gateway))
        guard checks.last?.failure == nil else { return checks }
        var gatewayTime: Int64?
        var sentAt: Int64 = 0
        do throws(CommandFailure) {
            let logger = Logger(label: "tunnel.doctor") { _ in SwiftLogNoOpLogHandler() }
            var failure: CommandFailure?
            _ = try withOperatorSession(settings, logger: logger) { session in
                sentAt = DoctorSteps.now
                // Only the gateway's time is needed, which every page carries: a page of one node.
                session.ask(.listNodes(after: nil, limit: 1), reply: NodeList.self) { result in
                    switch result {
                    case .success(let list): gatewayTime = list.gatewayTime ?? -1
                    case .failure(let error): failure = CommandFailure(error)
                    }
                    session.finish(0)
                }
            }
            if let failure { throw failure }
        } catch {
            checks.append(DoctorSteps.connectionFailure(error))
            return checks
        }
        checks.append(
            .ok(
                "gateway identity",
                "its certificate is signed by the pinned CA (\(settings.gatewayCA)), and it accepts yours"))
        checks.append(DoctorSteps.clock(gatewayTime: gatewayTime, sentAt: sentAt))
        return checks
    }

}

/// The node's checks.
struct NodeDoctor {
    let configPath: String?

    func run() -> [DoctorCheck] {
        let settings: ClientSettings
        do {
            settings = try ClientSettings(
                try loadSettings(Schemas.client, config: configPath ?? Schemas.client.defaultConfigPath, flags: [:]))
        } catch {
            return [.fail("configuration", error.message, .configInvalid)]
        }
        var checks = [
            DoctorCheck.ok(
                "configuration",
                "\(configPath ?? Schemas.client.defaultConfigPath) is valid; gateway \(settings.gateway)")
        ]
        let certificate = DoctorSteps.certificate(settings.cert, role: "node")
        let reachable = DoctorSteps.reachable(settings.gateway)
        checks += [certificate, reachable]
        if reachable.failure == nil {
            if certificate.failure == nil { checks.append(pin(settings)) }
            // Also after a certificate failure: a wrong clock is the usual reason a fresh one looks expired.
            checks.append(clock(settings))
        }
        return checks + services(settings)
    }

    /// Asks the gateway's time on the enrollment door, which checks its certificate but no
    /// dates, so a node whose clock is wrong still gets an answer.
    private func clock(_ settings: ClientSettings) -> DoctorCheck {
        let logger = Logger(label: "tunnel.doctor") { _ in SwiftLogNoOpLogHandler() }
        let sentAt = DoctorSteps.now
        let answer: Result<Int64, FleetFailure>?
        do {
            let gatewayCA = try loadCertificate(settings.gatewayCA, fix: "")
            answer = try askGatewayTimeOnce(
                host: settings.gateway.host, port: settings.gateway.port, serverName: settings.serverName,
                gatewayCA: gatewayCA, logger: logger)
        } catch {
            return .fail("clock", "not measured: \(error)", .localFile)
        }
        switch answer {
        case .success(let gatewayTime): return DoctorSteps.clock(gatewayTime: gatewayTime, sentAt: sentAt)
        case .failure(let failure): return .fail("clock", "not measured: \(failure.message)", .gatewayUnreachable)
        case nil: return .fail("clock", "not measured: the gateway did not answer", .gatewayUnreachable)
        }
    }

    /// A TLS handshake with the node's own certificate, asking for the operator protocol: the
    /// gateway verifies the certificate, then refuses the role with a sentence, so the pin and
    /// the certificate are proven without taking the place of the node's live session.
    private func pin(_ settings: ClientSettings) -> DoctorCheck {
        let probe = OperatorSettings(
            gateway: settings.gateway, serverName: settings.serverName, cert: settings.cert, key: settings.key,
            gatewayCA: settings.gatewayCA, logLevel: .critical)
        do throws(CommandFailure) {
            let logger = Logger(label: "tunnel.doctor") { _ in SwiftLogNoOpLogHandler() }
            _ = try withOperatorSession(probe, logger: logger) { session in session.finish(0) }
        } catch {
            if error.code == .wrongRole {
                return .ok(
                    "gateway identity",
                    "its certificate is signed by the pinned CA (\(settings.gatewayCA)), and it accepts this node's")
            }
            return DoctorSteps.connectionFailure(error)
        }
        return .ok("gateway identity", "its certificate is signed by the pinned CA (\(settings.gatewayCA))")
    }

    /// Every service the gateway may ask for: the configured ones answer, the shell user can be
    /// become, the log root is there.
    private func services(_ settings: ClientSettings) -> [DoctorCheck] {
        var checks = settings.services.keys.sorted().map { name -> DoctorCheck in
            let address = settings.services[name]!
            if let problem = Reachability.problem(address) {
                return .fail("service \(name)", "\(address): \(problem)", .serviceNotDialable)
            }
            return .ok("service \(name)", "\(address) accepts connections")
        }
        if let user = settings.shellUser {
            do {
                _ = try ShellService(user: user)
                checks.append(.ok("service shell", "login shells of \(user) can start"))
            } catch {
                checks.append(.fail("service shell", error.reason, .serviceNotDialable))
            }
        }
        if !settings.logSources.isEmpty {
            var isDirectory: ObjCBool = false
            let present =
                FileManager.default.fileExists(atPath: settings.logRoot, isDirectory: &isDirectory)
                && isDirectory.boolValue
            checks.append(
                present
                    ? .ok("service logs", "\(settings.logSources.count) source(s) under \(settings.logRoot)")
                    : .fail("service logs", "log-root \(settings.logRoot) is not a directory", .serviceNotDialable))
        }
        return checks
    }
}
