import Foundation
import Glibc
import Logging
import Multiplex
import Testing
import TunnelClient
import TunnelGateway
import TunnelIO
import TunnelOperator
import TunnelRuntime
import TunnelState
import TunnelTLS

/// A fleet database in a temporary directory, removed when the test lets go of it.
final class TestFleet {
    let directory: String
    let store: SQLiteFleetStore

    init() throws {
        var template = Array("/tmp/tunnel-fleet-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        directory = String(cString: made)
        store = try SQLiteFleetStore(path: "\(directory)/fleet.db")
    }

    deinit {
        _ = try? FileManager.default.removeItem(atPath: directory)
    }

    /// Records an identity as enrolled: a node with its key and labels, an operator with this
    /// certificate and roles — what enrollment and `tunnel user add` would have stored.
    func enroll(_ identity: TLSIdentity, labels: [String: String] = ["site": "plant-a"], roles: [String] = ["admin"])
        throws
    {
        let certificate = identity.chain[0]
        let subject = try certificate.tunnelIdentity()
        let now = Int64(time(nil))
        switch subject.role {
        case .node:
            try store.saveNode(
                NodeEntry(
                    name: subject.name, labels: labels,
                    keySHA256: Hex.encode(SHA256.hash(try certificate.publicKey().der())),
                    certificateSerial: certificate.serialNumberHex, certificateNotAfter: certificate.notAfter,
                    enrolledAt: now))
        case .operator:
            try store.saveUser(
                UserEntry(
                    name: subject.name, roles: roles, createdAt: now, createdBy: "test",
                    certificateSerial: certificate.serialNumberHex, certificateNotAfter: certificate.notAfter))
        case .gateway:
            // A replica is not enrolled: its peer certificate comes from the shared PKI.
            break
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A complete small PKI made in memory for one test: node CA, operator CA, gateway certificate,
/// and the fleet database the gateway checks identities against.
struct TestPKI {
    let nodeCA: CertificateAuthority
    let operatorCA: CertificateAuthority
    let gateway: TLSIdentity
    let fleet: TestFleet

    init() throws {
        fleet = try TestFleet()
        let now = Int64(time(nil))
        let year = try CertificateValidity(now: now, lifetime: 365 * 86_400)
        nodeCA = try CertificateAuthority.createSelfSigned(
            commonName: "test node CA", key: try PrivateKey.generateP256(), validity: year)
        operatorCA = try CertificateAuthority.createSelfSigned(
            commonName: "test operator CA", key: try PrivateKey.generateP256(), validity: year)
        let key = try PrivateKey.generateP256()
        let certificate = try nodeCA.issueGatewayCertificate(
            for: try key.publicKey(), commonName: "gateway", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"],
            validity: year)
        gateway = TLSIdentity(chain: [certificate, nodeCA.certificate], key: key)
    }

    /// A client identity signed by `issuer` (the matching CA unless a test wants a wrong one),
    /// recorded in the fleet database as enrolled unless `enrolled` is false.
    func identity(
        _ role: TunnelIdentity.Role, _ name: String, issuer: CertificateAuthority? = nil,
        notBefore: Int64? = nil, lifetime: Int64 = 86_400, enrolled: Bool = true, roles: [String] = ["admin"]
    ) throws -> TLSIdentity {
        let ca = issuer ?? (role == .node ? nodeCA : operatorCA)
        let key = try PrivateKey.generateP256()
        let validity = try CertificateValidity(
            now: notBefore ?? Int64(time(nil)), lifetime: lifetime, backdate: min(300, lifetime / 10))
        let certificate = try ca.issueClientCertificate(
            for: try key.publicKey(), identity: try TunnelIdentity(role: role, name: name), validity: validity)
        let identity = TLSIdentity(chain: [certificate], key: key)
        if enrolled { try fleet.enroll(identity, roles: roles) }
        return identity
    }

    func gatewayConfiguration(port: UInt16 = 0) -> GatewayConfiguration {
        var configuration = GatewayConfiguration(
            listenHost: "127.0.0.1", listenPort: port, identity: gateway, nodeCA: nodeCA, operatorCA: operatorCA)
        configuration.drainTimeout = .seconds(2)
        return configuration
    }

    func endpoint(port: UInt16, identity: TLSIdentity) -> GatewayEndpoint {
        GatewayEndpoint(host: "127.0.0.1", port: port, identity: identity, gatewayCA: nodeCA.certificate)
    }
}

/// One event loop for a test, with bounded waits and a final check that every handle closed.
final class LoopRunner {
    let loop: EventLoop
    var logger = Logger(label: "test")

    init() throws {
        loop = try EventLoop()
        // TUNNEL_TEST_LOG=debug shows what the gateway, clients and connections do.
        logger.logLevel = getenv("TUNNEL_TEST_LOG").flatMap { Logger.Level(rawValue: String(cString: $0)) } ?? .warning
    }

    /// Runs the loop until `condition` holds or `timeout` passes; a 20 ms ticker wakes the loop
    /// so the condition is re-checked even when nothing else happens. Returns the condition.
    @discardableResult
    func run(until condition: () -> Bool, timeout: Duration = .seconds(10)) -> Bool {
        if condition() { return true }
        let (seconds, attoseconds) = timeout.components
        let deadline =
            EventLoop.monotonicNanoseconds + UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
        let ticker = LoopTimer(loop: loop)
        ticker.start(after: 20, repeat: 20) {}
        while !condition(), EventLoop.monotonicNanoseconds < deadline {
            _ = loop.runOnce()
        }
        ticker.close()
        _ = loop.runNoWait()
        return condition()
    }

    /// Lets everything close, then checks nothing is left open.
    func finish(sourceLocation: SourceLocation = #_sourceLocation) {
        // One short-lived ticker per round, so the ticker itself never counts as a leftover.
        let deadline = EventLoop.monotonicNanoseconds + 10_000_000_000
        while !loop.openHandles().isEmpty, EventLoop.monotonicNanoseconds < deadline {
            let ticker = LoopTimer(loop: loop)
            ticker.start(after: 20) {}
            _ = loop.runOnce()
            ticker.close()
            _ = loop.runNoWait()
        }
        #expect(loop.openHandles() == [], "handles left open", sourceLocation: sourceLocation)
        #expect(loop.close(), "uv_loop_close failed", sourceLocation: sourceLocation)
    }
}

/// A TCP service on loopback that echoes what it receives and half-closes after the peer does.
final class EchoServer {
    let listener: TCPListener
    var port: UInt16 { listener.localAddress.port }
    private(set) var connections = 0

    init(loop: EventLoop) throws {
        var accepted: [StreamConnection] = []
        listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
            guard case .success(let socket) = result else { return }
            accepted.append(socket)
            try? socket.startReading { event in
                switch event {
                case .data(let bytes): try? socket.write(bytes)
                case .end: try? socket.shutdown { _ in socket.close() }
                case .error: socket.close()
                }
            }
        }
        _ = accepted
    }

    func close() { listener.close() }
}

/// The operator end of a test stream: a socketpair whose one end the tunnel splices, and whose
/// other end the test writes and reads.
final class LocalPipe {
    let tunnelSide: StreamConnection
    let testSide: StreamConnection
    private(set) var received: [UInt8] = []
    private(set) var ended = false

    init(loop: EventLoop) throws {
        var descriptors: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &descriptors) == 0 else {
            throw OperatorFailure("socketpair failed", cause: .local)
        }
        tunnelSide = try StreamConnection.openPipe(loop: loop, fileDescriptor: descriptors[0])
        testSide = try StreamConnection.openPipe(loop: loop, fileDescriptor: descriptors[1])
        try testSide.startReading { [unowned self] event in
            switch event {
            case .data(let bytes): received.append(contentsOf: bytes)
            case .end, .error: ended = true
            }
        }
    }
}

/// A gateway on loopback with its fleet database and an echo service for nodes to offer, the
/// nodes and operators a test starts, and a teardown that stops them all and checks that every
/// handle closed. Suites subclass it for their own helpers.
class GatewayFixture {
    let runner: LoopRunner
    let pki: TestPKI
    var gateway: Gateway
    let port: UInt16
    let echo: EchoServer
    private(set) var nodes: [EdgeClient] = []
    private(set) var operators: [OperatorClient] = []

    /// `configure` adjusts the gateway's configuration before it starts.
    init(_ configure: (inout GatewayConfiguration, TestPKI) throws -> Void = { _, _ in }) throws {
        runner = try LoopRunner()
        pki = try TestPKI()
        var configuration = pki.gatewayConfiguration()
        try configure(&configuration, pki)
        gateway = try Gateway(
            loop: runner.loop, configuration: configuration, store: pki.fleet.store, logger: runner.logger)
        port = try gateway.start().port
        echo = try EchoServer(loop: runner.loop)
    }

    /// Starts a node offering `services` — by default `echo` (and `logs`, the same echo, where a
    /// second name is needed), none when built-in services are given.
    @discardableResult
    func startNode(
        _ identity: TLSIdentity, services: [String: LocalService]? = nil, labels: [String: String] = [:],
        files: NodeCredentialFiles? = nil, builtIn: [String: any BuiltInService] = [:], logger: Logger? = nil,
        session: SessionConfiguration? = nil
    ) throws -> EdgeClient {
        let service = LocalService(host: "127.0.0.1", port: echo.port)
        var configuration = EdgeClientConfiguration(
            gateway: pki.endpoint(port: port, identity: identity),
            services: services ?? (builtIn.isEmpty ? ["echo": service, "logs": service] : [:]), labels: labels,
            credentialFiles: files)
        configuration.builtInServices = builtIn
        if let session { configuration.session = session }
        let client = try EdgeClient(loop: runner.loop, configuration: configuration, logger: logger ?? runner.logger)
        client.start()
        nodes.append(client)
        return client
    }

    func online(_ name: String) -> Bool {
        gateway.nodeStatuses().contains { $0.name == name && $0.online && !$0.services.isEmpty }
    }

    /// Connects an operator; nil only if the connection attempt never finished.
    /// - Parameter port: another gateway's (a second replica's); this one's by default.
    func connectOperator(_ identity: TLSIdentity, port: UInt16? = nil) -> Result<MuxConnection, OperatorFailure>? {
        let client = try! OperatorClient(
            loop: runner.loop, endpoint: pki.endpoint(port: port ?? self.port, identity: identity),
            logger: runner.logger)
        operators.append(client)
        var outcome: Result<MuxConnection, OperatorFailure>?
        client.connect { outcome = $0 }
        runner.run(until: { outcome != nil })
        return outcome
    }

    /// Opens `service` on `node` over the last connected operator and echoes `bytes` through
    /// it; nil when they all came back, else the operator's sentence.
    func echoThrough(
        _ connection: MuxConnection, node: String, service: String = "echo", bytes: [UInt8] = Array("ping".utf8)
    ) throws -> String? {
        let pipe = try LocalPipe(loop: runner.loop)
        defer { pipe.testSide.close() }
        var result: OperatorFailure??
        operators.last!.splice(
            on: connection, node: node, service: service, interactive: true, input: pipe.tunnelSide,
            output: pipe.tunnelSide
        ) { result = .some($0) }
        try pipe.testSide.write(bytes)
        try pipe.testSide.shutdown()
        runner.run(until: { result != nil || pipe.received.count >= bytes.count })
        if pipe.received == bytes {
            runner.run(until: { result != nil })
            return nil
        }
        runner.run(until: { result != nil })
        return result.flatMap { $0?.message } ?? "no answer"
    }

    /// Stops the gateway and starts a new one on the same port with the same fleet database.
    func restartGateway(_ configure: (inout GatewayConfiguration) -> Void = { _ in }) throws {
        var stopped = false
        gateway.stop { stopped = true }
        runner.run(until: { stopped })
        var configuration = pki.gatewayConfiguration(port: port)
        configure(&configuration)
        gateway = try Gateway(
            loop: runner.loop, configuration: configuration, store: pki.fleet.store, logger: runner.logger)
        try gateway.start()
    }

    func tearDown() {
        for client in nodes { client.stop() }
        for client in operators { client.close() }
        echo.close()
        var stopped = false
        gateway.stop { stopped = true }
        runner.run(until: { stopped })
        runner.finish()
    }
}
