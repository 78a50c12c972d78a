import Foundation
import Logging
import Multiplex
import TunnelAudit
import TunnelGatewayCore
import TunnelIO
import TunnelMetrics
import TunnelPolicy
import TunnelRuntime
import TunnelState
import TunnelTLS
import TunnelText

/// Everything the gateway needs to run, already loaded and checked by the caller.
public struct GatewayConfiguration: Sendable {
    public var listenHost: String
    public var listenPort: UInt16
    /// The gateway's own certificate chain (leaf, then the node CA) and key.
    public var identity: TLSIdentity
    /// Signs node certificates (and the gateway's own); its hash is the pin in join tokens.
    public var nodeCA: CertificateAuthority
    public var operatorCA: CertificateAuthority
    /// Lifetime of the node certificates the gateway issues (renewed at two thirds).
    public var nodeCertificateLifetime: Int64 = 86_400
    /// Seconds after its certificate expired that a node may still re-enroll with it; later it
    /// needs a new join token. A stolen, long-switched-off box should not come back by itself.
    public var reenrollWindow: Int64 = 30 * 86_400
    /// The policy file, re-read on `reloadPolicy()` and whenever its content changes; nil for
    /// the built-in policy (role `admin` may do everything, other roles nothing).
    public var policyPath: String?
    /// The audit log's directory and its signing key's; nil runs without an audit trail
    /// (only tests do: the commands always set them).
    public var auditDirectory: String?
    public var auditKeyDirectory: String?
    /// Shell sessions are recorded here (asciicast v2), named by stream.
    public var recordingsDirectory: String? { auditDirectory.map { "\($0)/recordings" } }
    public var handshakeTimeout: Duration = .seconds(10)
    /// How long SIGTERM waits for streams to finish before cutting them.
    public var drainTimeout: Duration = .seconds(30)
    /// How often the audit log signs a checkpoint (`docs/AUDIT.md`).
    public var auditPolicy = AuditLogConfiguration()
    /// The version the start record and log line carry (the CLI adds the source commit).
    public var softwareVersion = TunnelProtocol.softwareVersion
    public var session = SessionConfiguration()
    /// Caps and rates before authentication, and each operator's share of a node.
    public var admission = AdmissionLimits()
    /// Where the keys that seal nodes' TLS session tickets are kept (`TicketKeyRing`), so nodes
    /// resume their sessions after a restart; nil: full handshakes only.
    public var sessionTicketKeysPath: String?
    /// This gateway's name and address as a replica of a cluster; nil for a lone gateway,
    /// which then keeps no presence in the store and writes no `replica` in its records.
    public var replica: ReplicaIdentity?
    /// Threads that run TLS handshakes' costly steps off the loop (`HandshakeWorker`); 0: all on
    /// the loop (the default: where the machine's cores are busy anyway, as in the benchmarks'
    /// storms, the hand-overs cost more than they gave).
    public var handshakeThreads = 0

    public init(
        listenHost: String, listenPort: UInt16, identity: TLSIdentity, nodeCA: CertificateAuthority,
        operatorCA: CertificateAuthority
    ) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.identity = identity
        self.nodeCA = nodeCA
        self.operatorCA = operatorCA
        session.sizeForRelaying()
        session.keepaliveInterval = GatewayKeepalive.interval
        session.keepaliveMissLimit = GatewayKeepalive.missLimit
        // Nodes and operators ping the gateway anyway: answering is enough while they do.
        session.pingsOnlyWhenQuiet = true
    }
}

/// The central gateway: one port for edge nodes, operators and enrolling nodes, told apart by
/// ALPN and by the CA that signed the certificate. Holds exactly one live session per node (the
/// newest authenticated one wins), checks the policy at every stream an operator opens, and
/// splices allowed streams to a service stream on the node. Identity comes only from verified
/// certificates, and what those may do from the fleet store and the policy. Loop-confined.
public final class Gateway {
    public let loop: EventLoop
    public let logger: Logger
    let configuration: GatewayConfiguration
    let tlsContext: TLSContext
    /// The keys nodes' session tickets are sealed with (`Gateway+SessionTickets.swift`).
    let ticketKeys: TicketKeyRing?
    let authority: FleetAuthority
    /// One set of scratch buffers for all connections: they share the loop.
    let buffers = MuxBuffers()
    private var listener: TCPListener?
    /// The local admin socket, once `startAdminSocket` opened it.
    var adminListener: UnixListener?
    /// What each connection is, the node sessions with their epochs, certificate deadlines: the
    /// decisions about connections, sans IO (`Gateway+Intents.swift` carries them out).
    var core: GatewayCore<ObjectIdentifier>
    /// The IO handle of every open connection, by the id the core knows it by.
    var connections: [ObjectIdentifier: ConnectionHandle] = [:]
    var relays: [ObjectIdentifier: StreamRelay] = [:]
    /// Whether streams were relayed at the last housekeeping tick (`Gateway+Memory.swift`).
    var wasRelaying = false
    private let housekeeping: LoopTimer
    /// When the next housekeeping tick falls due (loop clock): how late it runs is the loop's delay.
    private var housekeepingDue: UInt64 = 0
    let audit: AuditTrail?
    /// The audit syncs and fleet-store writes of a loop turn, done once for all of them.
    let groupCommit: GroupCommit
    /// Decides on connections before they authenticate (`Gateway+Admission.swift` carries it out).
    var admission: ConnectionAdmission<ObjectIdentifier>
    /// Accepted connections whose ClientHello is not in yet (`Gateway+HelloWaits.swift`).
    var helloWaits: [ObjectIdentifier: HelloWait] = [:]
    /// Operators' handshakes ahead of a reconnect storm's (`Gateway+Handshakes.swift`).
    var handshakes: HandshakeQueue<ObjectIdentifier>
    let handshakeTurn: LoopTimer
    /// Started with the listener, closed at stop (`Gateway+Handshakes.swift`).
    var handshakeWorker: HandshakeWorker?
    /// Each operator's share of the audit log.
    var streamRecords: StreamRecordBudget
    private var policyFileContent: [UInt8]?
    private var drainTimer: LoopTimer?
    private var onStopped: (() -> Void)?
    /// Counted at the decisions, read by `--metrics-listen` (`Gateway+Metrics.swift`).
    public let metrics = GatewayMetrics()
    /// Presence, fencing and the change feed of a cluster replica (`ClusterSync.swift`).
    private(set) var cluster: ClusterSync?
    /// This replica's peer links in a cluster (`Gateway+PeerRelay.swift`); nil for one box.
    var peering: PeerRouting?
    var isListening: Bool { listener != nil }

    /// How often certificate deadlines and the policy file are checked.
    static let housekeepingMilliseconds: UInt64 = 1_000

    /// - Parameter store: the fleet's nodes, tokens and users; the gateway uses it from its loop.
    public init(loop: EventLoop, configuration: GatewayConfiguration, store: FleetStore, logger: Logger) throws {
        self.loop = loop
        self.configuration = configuration
        self.logger = logger
        ticketKeys = try configuration.sessionTicketKeysPath.map { path throws(TLSError) in
            try TicketKeyRing(path: path, now: Int64(Date().timeIntervalSince1970))
        }
        tlsContext = try Self.makeTLSContext(configuration, ticketKeys: ticketKeys)
        let (policy, content) = try Self.loadPolicy(configuration.policyPath)
        policyFileContent = content
        authority = FleetAuthority(
            store: MeasuredFleetStore(store, metrics: metrics), nodeCA: configuration.nodeCA,
            operatorCA: configuration.operatorCA,
            nodeCertificateLifetime: configuration.nodeCertificateLifetime,
            reenrollWindow: configuration.reenrollWindow, policy: policy)
        housekeeping = LoopTimer(loop: loop)
        admission = ConnectionAdmission(limits: configuration.admission, now: loop.now)
        handshakes = HandshakeQueue(perTurn: configuration.admission.handshakesPerTurn)
        handshakeTurn = LoopTimer(loop: loop)
        core = GatewayCore(limits: Self.streamLimits(configuration), timeText: UTCTime.format)
        streamRecords = StreamRecordBudget(limits: configuration.admission, now: loop.now)
        if let directory = configuration.auditDirectory {
            do {
                audit = try AuditTrail(
                    directory: directory, keyDirectory: configuration.auditKeyDirectory ?? "\(directory)/../audit-key",
                    configuration: configuration.auditPolicy, replica: configuration.replica?.name, logger: logger,
                    metrics: metrics)
            } catch {
                throw FleetFailure("cannot open the audit log in \(directory): \(error.message)")
            }
        } else {
            audit = nil
        }
        groupCommit = GroupCommit(
            loop: loop, syncAudit: { [audit] in audit?.sync() ?? true },
            saveSightings: { [authority] in authority.recordSightings($0) })
        cluster = configuration.replica.map { [authority] in
            ClusterSync(identity: $0, gateway: self, store: authority.store, clock: { authority.now })
        }
        peering = cluster.map { PeerRouting(replicaName: $0.identity.name, presence: $0) }
    }

    /// Starts listening; returns the bound address (its port is the real one when 0 was asked).
    @discardableResult
    public func start() throws(IOError) -> SocketAddress {
        let address = try SocketAddress(ip: configuration.listenHost, port: configuration.listenPort)
        let listener = try TCPListener(
            loop: loop, address: address, backlog: Self.listenBacklog,
            acceptBudget: AcceptBudget(
                perTurn: configuration.admission.acceptsPerTurn, turnNanoseconds: Self.acceptTurnNanoseconds)
        ) { [unowned self] result in
            switch result {
            case .success(let socket): accepted(socket)
            case .failure(let error): logger.warning("accept failed", metadata: ["error": "\(error)"])
            }
        }
        self.listener = listener
        handshakeWorker = startHandshakeWorker()
        cluster?.start()
        housekeepingDue = loop.now + Self.housekeepingMilliseconds
        housekeeping.start(after: Self.housekeepingMilliseconds, repeat: Self.housekeepingMilliseconds) {
            [unowned self] in
            metrics.loopDelay(seconds: Double(loop.now &- housekeepingDue) / 1_000)
            housekeepingDue = loop.now + Self.housekeepingMilliseconds
            closeExpiredSessions()
            reloadPolicyIfChanged()
            enforceAdmission()
            enforceHelloDeadline()
            audit?.tick()
            returnFreedMemoryWhenIdle()
            rotateTicketKeys()
        }
        audit?.record(
            .gatewayStart(
                GatewayStart(
                    listen: "\(listener.localAddress)", version: configuration.softwareVersion,
                    policyVersion: authority.policy.version,
                    caPin: Hex.encode(authority.caPin))), durable: true)
        logger.info(
            "gateway listening",
            metadata: [
                "listen": "\(listener.localAddress)", "version": "\(configuration.softwareVersion)",
                "policy.version": "\(authority.policy.version)",
                "ca.pin": "\(Hex.encode(authority.caPin))",
            ])
        return listener.localAddress
    }

    /// Graceful stop (SIGTERM): no new connections, go-away to everyone, streams drain for up to
    /// the drain timeout, then whatever is left is cut. `completion` runs once all are closed.
    public func stop(completion: @escaping () -> Void) {
        listener?.close()
        listener = nil
        adminListener?.close()
        adminListener = nil
        housekeeping.close()
        cluster?.stop()
        handshakeTurn.close()
        closeHelloWaits()
        onStopped = completion
        let open = connections.values.map(\.connection)
        logger.info("gateway stopping", metadata: ["connections": "\(open.count)"])
        for connection in open { connection.goAway(reason: "gateway shutting down") }
        let timer = LoopTimer(loop: loop)
        timer.start(after: configuration.drainTimeout.wholeMilliseconds) { [unowned self] in
            for handle in connections.values {
                handle.connection.abort(Failure(.noError, "gateway shut down; drain time is over"))
            }
        }
        drainTimer = timer
        finishStopIfDrained()
    }

    func finishStopIfDrained() {
        guard let onStopped, connections.isEmpty else { return }
        self.onStopped = nil
        drainTimer?.close()
        drainTimer = nil
        enforceAdmission(final: true)
        groupCommit.close()
        handshakeWorker?.close()
        audit?.record(.gatewayStop(GatewayStop(reason: "stopped")))
        audit?.close()
        onStopped()
    }

    /// The audit fields naming a connection's peer: session id and source address.
    func auditPeer(_ connection: MuxConnection) -> AuditPeer {
        core.auditPeer(ObjectIdentifier(connection)) ?? AuditPeer(session: "?", source: connection.remoteAddress)
    }

    /// An operator as audit records name them: certificate subject and serial, and `roles`, the
    /// roles the request was decided with (looked up once per request by the caller).
    func auditOperator(_ name: String, _ connection: MuxConnection, roles: [String]) -> AuditOperator {
        core.auditOperator(ObjectIdentifier(connection), roles: roles)
            ?? AuditOperator(peer: auditPeer(connection), name: name, subject: nil, serial: nil, roles: roles)
    }

    private func accepted(_ socket: StreamConnection) {
        guard onStopped == nil else {
            socket.close()
            return
        }
        awaitHello(socket)
    }

    /// What every operator should know about the gateway's own state.
    public var warnings: [String] {
        guard let failure = audit?.failure else { return [] }
        return ["the gateway's audit log cannot be written (\(failure)): no new streams are admitted until it recovers"]
    }

    // MARK: - Policy

    /// Reads the policy file, or the built-in policy when there is none.
    public static func loadPolicy(_ path: String?) throws(FleetFailure) -> (Policy, [UInt8]?) {
        guard let path else { return (Policy.builtIn, nil) }
        let bytes: [UInt8]
        do { bytes = try DurableFile.read(path: path) } catch {
            throw FleetFailure("cannot read the policy file: \(error)")
        }
        do {
            return (try Policy.parse(bytes, source: path, version: policyVersion(bytes)), bytes)
        } catch {
            throw FleetFailure(error.message)
        }
    }

    /// A policy's version: the start of its text's SHA-256, the same at every replica.
    static func policyVersion(_ bytes: [UInt8]) -> String {
        String(Hex.encode(SHA256.hash(bytes)).prefix(16))
    }

    /// SIGHUP: re-read the policy file. An invalid one keeps the policy in force and says why.
    public func reloadPolicy() {
        guard let path = configuration.policyPath else {
            logger.notice("no policy file configured; the built-in policy stays")
            return
        }
        do {
            let (policy, content) = try Self.loadPolicy(path)
            policyFileContent = content
            let previous = authority.policy.version
            authority.replacePolicy(policy)
            logger.notice(
                "policy reloaded",
                metadata: [
                    "policy.version": "\(policy.version)", "policy.previous": "\(previous)", "policy.file": "\(path)",
                ])
            audit?.record(
                .policyReload(
                    PolicyReload(outcome: .ok, policyVersion: policy.version, previousVersion: previous, file: path)))
            if policy.version != previous {
                cluster?.publish(
                    .policy, subject: policy.version, detail: String(decoding: content ?? [], as: UTF8.self))
            }
        } catch {
            // These bytes are reported now: the change check must not report them again.
            policyFileContent = try? DurableFile.read(path: path)
            logger.error(
                "policy not reloaded; the previous one stays in force",
                metadata: [
                    "policy.version": "\(authority.policy.version)", "error": "\(error.message)",
                ])
            audit?.record(
                .policyReload(
                    PolicyReload(
                        outcome: .invalid, policyVersion: authority.policy.version, reason: error.message, file: path)))
        }
    }

    /// The file is re-read when its bytes change, so an edit applies within a second.
    private func reloadPolicyIfChanged() {
        guard let path = configuration.policyPath, let bytes = try? DurableFile.read(path: path),
            bytes != policyFileContent
        else { return }
        policyFileContent = bytes
        reloadPolicy()
    }

    // MARK: - Certificates in use

    /// Sessions whose certificate expired without a renewal on that session are closed
    /// (`GatewayCore.expireCertificates`).
    private func closeExpiredSessions() {
        enact(core.expireCertificates(now: moment))
    }
}
