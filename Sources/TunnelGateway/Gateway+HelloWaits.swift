import Multiplex
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// A connection accepted but not yet given a place among the handshakes: its first bytes are
/// read into a `ClientHelloPeek` until they say which protocol it offers. It holds a socket and
/// those bytes (at most `ClientHelloPeek.maximumBufferedBytes`), no TLS state.
final class HelloWait {
    let socket: StreamConnection
    var peek = ClientHelloPeek()

    init(socket: StreamConnection) {
        self.socket = socket
    }

    /// The protocols the ClientHello offers (none when it was unreadable).
    var offered: [String] {
        if case .offered(let names) = peek.verdict { names } else { [] }
    }
}

// Carries out `ConnectionAdmission`'s decisions before TLS: a place to await the ClientHello at
// accept, then a place among the handshakes once the hello says whether an operator is coming
// (operators have a share of their own, so an admin gets in during a reconnect storm).
extension Gateway {
    /// Connections the kernel queues for accept (it caps this at `net.core.somaxconn`, 4,096 on
    /// Linux since 5.4). A reconnect storm fills libuv's default of 511, and a full queue drops
    /// the SYN of an admin, whose client then waits 1 s, then 2 s more, to resend it. Queued
    /// connections cost the gateway nothing until accepted; the hello is read with the accept
    /// (`helloCameWithConnect`), so a long queue does not overrun the hello pool.
    static let listenBacklog: Int32 = 4_096

    /// How long a loop turn may go on taking new connections from that queue, from its first
    /// (and at most `AdmissionLimits.acceptsPerTurn` of them): each costs its accept, its
    /// ClientHello read and its TLS state, and a storm's queue of thousands taken at once held
    /// the established sessions' frames (an admin's pages, its streams) for the whole turn. The
    /// rest stay queued in the kernel, where they cost nothing, until the next turn.
    static let acceptTurnNanoseconds: UInt64 = 10_000_000

    /// A new socket: when its ClientHello came with the connect (it queued behind a storm),
    /// it is given a place among the handshakes, or refused, at once. Otherwise it is closed at
    /// once when its source may not connect now, else read until its ClientHello is in. One
    /// that gives up its place to this one is closed (nothing was said to it yet, so nothing to
    /// tell it).
    func awaitHello(_ socket: StreamConnection) {
        let wait = HelloWait(socket: socket)
        let id = ObjectIdentifier(wait)
        let source = (try? socket.peerAddress()).map { admissionSourceKey(ip: $0.ip) } ?? "unknown"
        if helloCameWithConnect(wait) {
            let priority = Self.handshakePriority(wait.offered)
            enterHandshake(wait, admission.helloAtAccept(id, source: source, priority: priority, now: loop.now))
            return
        }
        guard case .admit(let closing) = admission.mayConnect(from: source, now: loop.now) else {
            socket.close()
            return
        }
        if let closing { helloWaits.removeValue(forKey: closing)?.socket.close() }
        admission.awaitingHello(id, source: source, now: loop.now)
        helloWaits[id] = wait
        do {
            // The handler holds the wait until the connection's handler replaces it or the
            // socket closes, which releases it.
            try socket.startReading { [unowned self, wait] event in
                switch event {
                case .data(let bytes):
                    if wait.peek.feed(bytes) != .needMore { helloRead(wait) }
                case .end, .error:
                    endHelloWait(id)
                }
            }
        } catch {
            endHelloWait(id)
        }
    }

    /// The ClientHello is in (or unreadable, left to TLS to refuse): the handshake starts if
    /// admission finds it a place, else the socket is closed before any TLS work.
    private func helloRead(_ wait: HelloWait) {
        let id = ObjectIdentifier(wait)
        guard helloWaits.removeValue(forKey: id) != nil else { return }
        enterHandshake(wait, admission.helloRead(id, priority: Self.handshakePriority(wait.offered), now: loop.now))
    }

    /// Reads what arrived with the connect, without waiting: true when it holds the whole
    /// ClientHello (or bytes that are no ClientHello, left to TLS to refuse). Nothing, part of
    /// a hello, an end or an error leave the socket to the read path, which sees the same.
    private func helloCameWithConnect(_ wait: HelloWait) -> Bool {
        guard case .data(let bytes) = try? wait.socket.readNow(atMost: ClientHelloPeek.maximumBufferedBytes) else {
            return false
        }
        return wait.peek.feed(bytes) != .needMore
    }

    /// Carries out admission's place for a connection whose ClientHello is in: the handshake
    /// starts, the connection waits for a place (reading nothing more), or the socket is closed
    /// before any TLS work.
    private func enterHandshake(_ wait: HelloWait, _ place: ConnectionAdmission<ObjectIdentifier>.Place) {
        let id = ObjectIdentifier(wait)
        switch place {
        case .admit(let closing):
            if let closing {
                connections[closing]?.connection.close(Failure(.enhanceYourCalm, "too many TLS handshakes in progress"))
            }
            startHandshake(wait.socket, received: wait.peek.received, hello: id)
        case .wait(let closing):
            if let closing { helloWaits.removeValue(forKey: closing)?.socket.close() }
            wait.socket.stopReading()
            helloWaits[id] = wait
        case .refuse:
            wait.socket.close()
        }
    }

    /// Handshake places came free: the connections waiting for one start their handshakes,
    /// best first. Run from the handshake turn, never from inside a connection's callback.
    func unparkHellos() {
        for id in admission.unpark() {
            guard let wait = helloWaits.removeValue(forKey: id) else {
                admission.closed(id)
                continue
            }
            startHandshake(wait.socket, received: wait.peek.received, hello: id)
        }
    }

    /// Starts the TLS handshake of a socket admitted after its ClientHello, fed the bytes read
    /// so far.
    private func startHandshake(_ socket: StreamConnection, received: [UInt8], hello: ObjectIdentifier) {
        configureKeepalive(socket, session: configuration.session, logger: logger)
        let tls: TLSConnection
        do {
            tls = try TLSConnection(context: tlsContext)
        } catch {
            logger.error("cannot start TLS", metadata: ["error": "\(error)"])
            admission.closed(hello)
            socket.close()
            return
        }
        let connection = MuxConnection(
            loop: loop, socket: socket, tls: tls, role: .acceptor, configuration: configuration.session,
            handshakeTimeout: configuration.handshakeTimeout, buffers: buffers, logger: logger)
        connection.delegate = self
        connection.handshakeWorker = handshakeWorker
        tls.holdAtClientHello = { [unowned self, unowned connection] offered in
            holdsHandshake(connection, offered: offered)
        }
        opened(connection)
        admission.handshakeStarted(ObjectIdentifier(connection), after: hello)
        connection.start(received: received)
    }

    private func endHelloWait(_ id: ObjectIdentifier) {
        admission.closed(id)
        helloWaits.removeValue(forKey: id)?.socket.close()
    }

    /// Every second: connections whose ClientHello did not come within the handshake timeout
    /// of their accept are closed.
    func enforceHelloDeadline() {
        let timeout = configuration.handshakeTimeout.wholeMilliseconds
        for id in admission.expiredHelloWaits(now: loop.now, timeout: timeout) {
            helloWaits.removeValue(forKey: id)?.socket.close()
        }
    }

    /// At shutdown: connections that have not said hello are closed without a word.
    func closeHelloWaits() {
        for (id, wait) in helloWaits {
            admission.closed(id)
            wait.socket.close()
        }
        helloWaits.removeAll()
    }
}
