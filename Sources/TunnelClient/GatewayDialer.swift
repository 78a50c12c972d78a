import Logging
import Multiplex
import TunnelIO
import TunnelRuntime
import TunnelTLS

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Resolves the gateway's name and opens a TCP connection to it: the one way every client
/// side (node, operator, enrollment) reaches the gateway. A name with several addresses (the
/// replicas of a cluster behind one DNS name) is tried address by address, starting at
/// `addressOffset`, until one connects. Cancellable until it completes.
package final class GatewayDialer {
    private let loop: EventLoop
    private var resolver: Resolver?
    private var pendingSocket: StreamConnection?
    /// Addresses not tried yet, in the order they will be.
    private var untried: ArraySlice<SocketAddress> = []
    private var completion: ((Result<StreamConnection, FleetFailure>) -> Void)?

    /// Addresses of one name tried at most in one dial, each for up to the connect timeout.
    static let maxAddresses = 8

    /// `completion` runs once, on the loop, unless `cancel()` comes first.
    /// - Parameter addressOffset: where in the resolved addresses to start (callers spreading a
    ///   fleet over the addresses of one name pass a random number).
    package init(
        loop: EventLoop, host: String, port: UInt16, timeoutMilliseconds: UInt64, addressOffset: Int = 0,
        completion: @escaping (Result<StreamConnection, FleetFailure>) -> Void
    ) {
        self.loop = loop
        self.completion = completion
        let target = "\(host):\(port)"
        do {
            resolver = try Resolver.resolve(target, loop: loop) { [self] result in
                resolver = nil
                switch result {
                case .success(let addresses) where !addresses.isEmpty:
                    let start = abs(addressOffset % addresses.count)
                    untried = (addresses[start...] + addresses[..<start]).prefix(Self.maxAddresses)
                    connectNext(timeoutMilliseconds: timeoutMilliseconds)
                case .success:
                    finish(.failure(FleetFailure("\(target) resolved to no address")))
                case .failure(let error):
                    finish(.failure(FleetFailure("cannot resolve the gateway \(target): \(error)")))
                }
            }
        } catch {
            finish(.failure(FleetFailure("bad gateway address \(target): \(error)")))
        }
    }

    /// Connects to the next untried address; a failure moves on to the one after, the last
    /// failure is the dial's.
    private func connectNext(timeoutMilliseconds: UInt64) {
        guard completion != nil, let address = untried.popFirst() else { return }
        func failed(_ error: some Error) {
            if untried.isEmpty {
                finish(.failure(FleetFailure("cannot connect to the gateway at \(address): \(error)")))
            } else {
                connectNext(timeoutMilliseconds: timeoutMilliseconds)
            }
        }
        do {
            pendingSocket = try StreamConnection.connect(
                loop: loop, to: address, timeoutMilliseconds: timeoutMilliseconds
            ) { [self] result in
                let socket = pendingSocket
                pendingSocket = nil
                switch result {
                case .success:
                    if let socket { finish(.success(socket)) }
                case .failure(let error):
                    failed(error)
                }
            }
        } catch {
            failed(error)
        }
    }

    private func finish(_ result: Result<StreamConnection, FleetFailure>) {
        let completion = self.completion
        self.completion = nil
        completion?(result)
    }

    /// Stops resolving or connecting; the completion does not run.
    package func cancel() {
        completion = nil
        resolver?.cancel()
        resolver = nil
        pendingSocket?.close()
        pendingSocket = nil
    }
}

extension MuxConnection {
    /// The client's half of a session on a freshly dialed socket: TLS as the dialer, checking the
    /// gateway's certificate for `serverName` at `certificateTime`, then the mux session. The
    /// caller keeps it and then calls `start()`, so that callbacks find it already kept. On
    /// failure the socket is closed and the error thrown.
    package static func makeClient(
        on socket: StreamConnection, context: TLSContext, serverName: String,
        certificateTime: TLSConnection.CertificateTime = .systemClock,
        configuration: SessionConfiguration = SessionConfiguration(), handshakeTimeout: Duration = .seconds(10),
        buffers: MuxBuffers = MuxBuffers(), delegate: MuxConnectionDelegate, logger: Logger
    ) throws -> MuxConnection {
        let tls: TLSConnection
        do {
            tls = try TLSConnection(context: context, serverHost: serverName, certificateTime: certificateTime)
        } catch {
            socket.close()
            throw error
        }
        let connection = MuxConnection(
            loop: socket.loop, socket: socket, tls: tls, role: .dialer, configuration: configuration,
            handshakeTimeout: handshakeTimeout, buffers: buffers, logger: logger)
        connection.delegate = delegate
        return connection
    }
}

/// One question on an enrollment connection (ALPN `tunnel-enroll/1`): dial, handshake, ask,
/// read the `CertificateReply`, close. Used to enroll with a token, to re-enroll with an expired
/// certificate, and to learn the gateway's time.
final class EnrollmentCall: MuxConnectionDelegate {
    private let loop: EventLoop
    private let logger: Logger
    private let request: EnrollmentRequest
    private var dialer: GatewayDialer?
    private var connection: MuxConnection?
    private var refusal: Failure?
    private var completion: ((Result<CertificateReply, FleetFailure>, TLSError?) -> Void)?
    /// Keeps the call alive while it runs; nobody else needs to hold it.
    private var keepAlive: EnrollmentCall?

    /// - Parameters:
    ///   - verification: the gateway CA, or the CA pin from a token.
    ///   - identity: none for a new node; the expired certificate for re-enrollment.
    ///   - completion: the reply, or a sentence and the TLS error if the handshake failed.
    @discardableResult
    init(
        loop: EventLoop, host: String, port: UInt16, serverName: String,
        verification: TLSConfiguration.PeerVerification,
        identity: TLSIdentity?, certificateTime: TLSConnection.CertificateTime, request: EnrollmentRequest,
        logger: Logger,
        completion: @escaping (Result<CertificateReply, FleetFailure>, TLSError?) -> Void
    ) {
        self.loop = loop
        self.logger = logger
        self.request = request
        self.completion = completion
        keepAlive = self
        let context: TLSContext
        do {
            context = try TLSContext(
                configuration: TLSConfiguration(
                    role: .client, identity: identity, peerVerification: verification,
                    applicationProtocols: [TunnelProtocol.enrollALPN]))
        } catch {
            finish(.failure(FleetFailure("cannot set up TLS: \(error)")), nil)
            return
        }
        dialer = GatewayDialer(loop: loop, host: host, port: port, timeoutMilliseconds: 10_000) { [self] result in
            dialer = nil
            switch result {
            case .success(let socket):
                do {
                    connection = try MuxConnection.makeClient(
                        on: socket, context: context, serverName: serverName, certificateTime: certificateTime,
                        delegate: self, logger: logger)
                    connection?.start()
                } catch {
                    finish(.failure(FleetFailure("cannot start TLS: \(error)")), nil)
                }
            case .failure(let failure):
                finish(.failure(failure), nil)
            }
        }
    }

    private func finish(_ result: Result<CertificateReply, FleetFailure>, _ tlsError: TLSError?) {
        let completion = self.completion
        self.completion = nil
        connection?.abort(Failure(.noError, "enrollment call done"))
        completion?(result, tlsError)
        keepAlive = nil
    }

    func connectionEstablished(_ connection: MuxConnection) -> Failure? { nil }

    func connectionReady(_ connection: MuxConnection) {
        connection.request(request, reply: CertificateReply.self) { [self] result in
            finish(result.flatMap { reply in reply.refusal.map { .failure($0) } ?? .success(reply) }, nil)
        }
    }

    func connection(_ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool) {
        connection.reset(stream, code: .refusedStream)
    }

    func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {
        if failure.code != .noError { refusal = failure }
    }

    func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        let reason = refusal ?? failure
        let tlsFailure = connection.tlsFailure
        finish(
            .failure(
                FleetFailure(
                    "the gateway ended the enrollment connection: \(tlsFailure.map { "\($0)" } ?? reason.reason)",
                    isFinal: tlsFailure?.code == .pinMismatch)), tlsFailure)
    }
}
