import ArgumentParser
import Foundation
import TunnelAudit
import TunnelConsole

/// `tunnel audit serve`: the auditor's web console over an audit directory or an export bundle.
public struct AuditServeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve a read-only web console over an audit directory or an export bundle.",
        discussion: """
            Prints a URL with a one-time secret; open it in a browser on this machine. Listens on loopback \
            unless --listen says otherwise. Offline: every page and asset comes from this binary or the local \
            system. The log is verified once at start; the result is on every page (docs/AUDIT.md §9).
            """)
    @Argument(help: "An audit directory or a bundle from `tunnel audit export`")
    var path: String = AuditReader.defaultDirectory
    @Option(help: "Address to listen on; port 0 picks a free one") var listen = "127.0.0.1:0"
    @Option(help: "The gateway's audit public key (default: audit-key.pub.pem beside the log)") var key: String?
    @Option(help: "The gateway's admin socket, which records this read (default: the gateway's when it exists)")
    var adminSocket: String?
    @Flag(
        help:
            "Read the gateway's log over the tunnel with your operator login (a role with audit: true) instead of files"
    )
    var gateway = false
    @Option(help: "With --gateway: the operator config (default ~/.config/tunnel/operator.yaml; env TUNNEL_CONFIG)")
    var config: String?
    public init() {}

    public func run() throws {
        let address: HostPort
        do { address = try HostPort.parse(listen, example: "127.0.0.1:8080", allowAnyPort: true) } catch {
            throw CommandFailure.usage("--listen: \(error.text)", .usage)
        }
        if gateway { return try serveFromGateway(address: address) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CommandFailure.usage(
                "\(path) does not exist; give an audit directory or a bundle from `tunnel audit export`", .localFile)
        }
        try AuditReader.recordRead("serve console over \(path)", adminSocket: adminSocket)
        var directory = path
        var unpacked: String?
        defer { if let unpacked { try? FileManager.default.removeItem(atPath: unpacked) } }
        let report: AuditReport
        if isDirectory.boolValue {
            report = AuditVerifier.verify(directory: path, publicKeyFile: key)
        } else {
            directory = try AuditBundle.temporaryDirectory()
            unpacked = directory
            report = try AuditBundle.unpack(bundle: path, into: directory, publicKeyFile: key)
        }
        try serve(directory: directory, report: report, address: address)
    }

    /// Live mode: a copy of the gateway's log fetched now over the tunnel, verified here.
    private func serveFromGateway(address: HostPort) throws {
        let settings = try OperatorSettings(try loadSettings(OperatorOptions.schema, config: config, flags: [:]))
        let directory = try AuditBundle.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try AuditMirror.fetch(
            settings: settings, logger: TunnelLogging.bootstrap(level: max(settings.logLevel, .warning)),
            into: directory)
        print(
            "copied the gateway's audit log over the tunnel (the gateway recorded the read); restart to see newer records"
        )
        try serve(
            directory: directory, report: AuditVerifier.verify(directory: directory, publicKeyFile: key),
            address: address)
    }

    private func serve(directory: String, report: AuditReport, address: HostPort) throws {
        let socket = adminSocket
        let services = ConsoleServices(
            recordRead: { what in try AuditReader.recordRead(what, adminSocket: socket) },
            exportBundle: { directory, from, until, out in
                _ = try AuditBundle.export(directory: directory, from: from, to: until, out: out)
            })
        do {
            try ConsoleServer.run(
                host: address.host, port: address.port, directory: directory, report: report, services: services
            ) { url in
                print(
                    "audit console (\(report.isValid ? "log verified" : "LOG BROKEN: \(report.problem?.message ?? "")")); open in a browser on this machine:"
                )
                print("  \(url)")
                print("The link works once. Ctrl-C stops.")
                fflush(nil)
            }
        } catch {
            switch error {
            case .cannotStart(let reason): throw CommandFailure.failed("cannot start: \(reason)", .systemResource)
            case .cannotServe(let reason):
                throw CommandFailure.failed("cannot serve the console on \(address): \(reason)", .portInUse)
            }
        }
    }
}
