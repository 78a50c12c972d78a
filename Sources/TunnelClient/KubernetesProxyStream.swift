import Multiplex
import TunnelHTTP
import TunnelIO
import TunnelKube
import TunnelRuntime
import TunnelTLS

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One operator HTTP connection (a mux stream) carried to the API server over TLS: every
/// request head is rewritten by `ImpersonationRewrite` (not only the first on a keep-alive
/// connection), bodies are re-framed as they pass, responses go back as they are, and after a
/// `101` both directions are raw bytes (exec, attach, port-forward, WebSocket and SPDY).
///
/// Bounded: heads and header counts by `HTTPConversation`'s parser limits, requests per second
/// by `RequestRate`, bytes in flight by the stream's window (bytes from the operator are
/// reported consumed only once the socket took them; the socket is not read while the stream
/// asks to wait). Loop-confined.
final class KubernetesProxyStream: StreamHandler {
    private unowned let service: KubernetesService
    private let connection: MuxConnection
    private let stream: StreamID
    private let rewrite: ImpersonationRewrite
    private let conversation = HTTPConversation()
    private let tls: TLSConnection
    private var socket: StreamConnection?
    private var connected = false
    private var rate = RequestRate()
    /// Whether the request being sent has a chunked body (its pieces are re-framed).
    private var chunkedRequest = false
    /// Plaintext for the API server written before the handshake finished.
    private var pendingPlaintext: [UInt8] = []
    /// Bytes from the operator not yet reported consumed.
    private var creditOwed = 0
    private var operatorDone = false
    private var serverDone = false
    private var ended = false
    private var onEnd: ((KubernetesProxyStream) -> Void)?
    private var scratch = [UInt8](repeating: 0, count: TLSConnection.recommendedReadBufferSize)

    init(
        service: KubernetesService, connection: MuxConnection, stream: StreamID, rewrite: ImpersonationRewrite,
        onEnd: @escaping (KubernetesProxyStream) -> Void
    ) throws {
        self.service = service
        self.connection = connection
        self.stream = stream
        self.rewrite = rewrite
        self.onEnd = onEnd
        let upstream = service.upstream
        tls = try TLSConnection(context: service.context, serverHost: upstream.serverName)
        let address = try SocketAddress(ip: upstream.host, port: upstream.port)
        connection.attach(self, to: stream)
        socket = try StreamConnection.connect(
            loop: service.loop, to: address, timeoutMilliseconds: KubernetesService.connectTimeoutMilliseconds
        ) { [weak self] result in
            self?.connectFinished(result)
        }
    }

    private func connectFinished(_ result: Result<Void, IOError>) {
        guard !ended, let socket else { return }
        switch result {
        case .failure(let error):
            service.logger.notice("Kubernetes API unreachable", metadata: ["error": "\(error)"])
            connection.reset(stream, code: TunnelErrorCode.serviceUnreachable)
            end()
        case .success:
            connected = true
            try? socket.setNoDelay(true)
            do {
                try connection.accept(stream)
                try socket.startReading { [unowned self] event in socketEvent(event) }
            } catch {
                return fail("cannot start: \(error)")
            }
            tls.advanceHandshake()
            flushCiphertext()
        }
    }

    // MARK: From the operator

    func streamReceived(_ bytes: ArraySlice<UInt8>) {
        guard !ended else { return connection.consumed(bytes.count, on: stream) }
        do throws(KubeProxyError) {
            try send(conversation.fromClient(Array(bytes)))
        } catch {
            return refuse(error)
        }
        creditOwed += bytes.count
        returnCredit()
    }

    /// Reports the operator's bytes consumed once the socket took what they became; before the
    /// handshake is done nothing is, so a fast sender cannot pile up plaintext here beyond its window.
    private func returnCredit() {
        guard case .done = tls.handshakeState, creditOwed > 0 else { return }
        let count = creditOwed
        creditOwed = 0
        flushCiphertext { [weak self] in
            guard let self, !ended else { return }
            connection.consumed(count, on: stream)
        }
    }

    /// Turns parsed client output into bytes for the API server.
    private func send(_ outputs: [HTTPConversation.ClientOutput]) throws(KubeProxyError) {
        var plaintext: [UInt8] = []
        for output in outputs {
            switch output {
            case .head(let head):
                guard rate.admit(now: service.loop.now) else { throw .rateLimited(perSecond: RequestRate.perSecond) }
                chunkedRequest = head.values("Transfer-Encoding").contains { $0.lowercased().contains("chunked") }
                plaintext += try rewrite.encodedRewrite(head)
            case .body(let body):
                plaintext +=
                    chunkedRequest ? Array(String(body.count, radix: 16).utf8) + [13, 10] + body + [13, 10] : body
            case .end:
                if chunkedRequest { plaintext += Array("0\r\n\r\n".utf8) }
            case .raw(let bytes):
                plaintext += bytes
            }
        }
        pendingPlaintext += plaintext
        encryptPending()
    }

    func streamFinished() {
        operatorDone = true
        guard !ended else { return }
        encryptPending()
        tls.shutdown()
        flushCiphertext { [weak self] in try? self?.socket?.shutdown() }
        if serverDone { end() }
    }

    func streamReset(_ failure: Failure) {
        end()
    }

    func streamWritable() {
        guard !ended, !serverDone else { return }
        try? socket?.resumeReading()
    }

    /// A request this proxy will not carry: the operator hears why (as an API error) when no
    /// response is under way, then the connection ends.
    private func refuse(_ error: KubeProxyError) {
        service.logger.notice("kubernetes request refused", metadata: ["error": "\(error)", "stream.id": "\(stream)"])
        if !conversation.isRaw, conversation.unanswered.isEmpty {
            let body =
                Array(
                    #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"\#(error.description.replacing("\"", with: "'")) (refused by the node's tunnel client)","code":\#(error.responseStatus)}"#
                        .utf8) + [10]
            let head = Array(
                "HTTP/1.1 \(error.responseStatus) Refused\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
                    .utf8)
            _ = try? connection.write((head + body)[...], on: stream)
            connection.finish(stream)
        } else {
            connection.reset(stream, code: TunnelErrorCode.badRequest)
        }
        end()
    }

    // MARK: From the API server

    private func socketEvent(_ event: StreamConnection.ReadEvent) {
        switch event {
        case .data(let bytes):
            tls.feedCiphertext(bytes)
        case .end:
            tls.feedEndOfCiphertext()
        case .error(let error):
            return fail("reading from the API server failed: \(error)")
        }
        pump()
    }

    private func pump() {
        guard !ended else { return }
        switch tls.advanceHandshake() {
        case .failed(let error):
            return fail("TLS with the Kubernetes API failed: \(error)")
        case .inProgress:
            return flushCiphertext()
        case .done:
            encryptPending()
            returnCredit()
        }
        while !ended {
            let result: TLSConnection.ReadResult
            do {
                result = try scratch.withUnsafeMutableBytes { try tls.readPlaintext(into: $0) }
            } catch let error as TLSError where error.code == .truncated {
                // A server that closes without close_notify (many do after an exec): an end,
                // not a failure; HTTP's own framing and the upgraded protocols' own ends tell
                // kubectl whether it got everything.
                serverFinished()
                break
            } catch {
                return fail("TLS with the Kubernetes API failed: \(error)")
            }
            switch result {
            case .bytes(let count):
                fromServer(Array(scratch[..<count]))
            case .closed:
                serverFinished()
            case .wouldBlock:
                return flushCiphertext()
            }
            if serverDone { break }
        }
    }

    private func fromServer(_ plaintext: [UInt8]) {
        do throws(KubeProxyError) {
            let (_, released) = try conversation.fromServer(plaintext)
            try send(released)
        } catch {
            return fail("the API server's HTTP: \(error)")
        }
        do {
            if try !connection.write(plaintext[...], on: stream) { socket?.stopReading() }
        } catch {
            end()
        }
    }

    private func serverFinished() {
        guard !serverDone else { return }
        serverDone = true
        connection.finish(stream)
        if operatorDone { end() }
    }

    // MARK: TLS and the socket

    private func encryptPending() {
        guard case .done = tls.handshakeState, !pendingPlaintext.isEmpty else { return }
        guard !serverDone else {
            pendingPlaintext = [] // the API server has gone: a late close frame from kubectl has nobody to reach
            return
        }
        do {
            let written = try tls.writePlaintext(pendingPlaintext)
            pendingPlaintext.removeFirst(written)
        } catch let error as TLSError where error.code == .truncated {
            pendingPlaintext = []
            serverFinished()
        } catch {
            fail("TLS with the Kubernetes API failed: \(error)")
        }
    }

    /// Sends what TLS produced; `completion` runs once the socket took it (at once if nothing is pending).
    private func flushCiphertext(_ completion: (() -> Void)? = nil) {
        guard connected, let socket, !ended, tls.pendingCiphertextCount > 0 else {
            completion?()
            return
        }
        var ciphertext: [UInt8] = []
        tls.drainCiphertext(into: &ciphertext)
        do {
            try socket.write(ciphertext) { [weak self] error in
                if let error { self?.fail("writing to the API server failed: \(error)") } else { completion?() }
            }
        } catch {
            fail("writing to the API server failed: \(error)")
        }
    }

    private func fail(_ reason: String) {
        guard !ended else { return }
        service.logger.notice("kubernetes stream failed", metadata: ["reason": "\(reason)", "stream.id": "\(stream)"])
        connection.reset(stream, code: .cancel)
        end()
    }

    private func end() {
        guard !ended else { return }
        ended = true
        socket?.close()
        let onEnd = self.onEnd
        self.onEnd = nil
        onEnd?(self)
    }
}
