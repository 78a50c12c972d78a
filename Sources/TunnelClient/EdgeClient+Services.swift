import Logging
import Multiplex
import TunnelIO
import TunnelRuntime

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// What the node says it offers, and the streams the gateway opens to it: each is served by
// name from the node's own configuration, never by an address the gateway sends.
extension EdgeClient {
    func announce(on connection: MuxConnection) {
        let announcement = NodeAnnouncement(
            labels: configuration.labels,
            services: services.names,
            version: configuration.softwareVersion, bootID: Self.bootID(), uptimeSeconds: Self.uptime())
        do {
            // The gateway accepts the announcement once it has taken the node in: the reconnect
            // backoff starts over from then on.
            let handler = DiscardingHandler(connection: connection) { [unowned self] in
                handle(.announcementAccepted)
            }
            handler.stream = try connection.openStream(
                metadata: TunnelProtocol.encode(NodeRequest.announce(announcement)), interactive: false,
                handler: handler)
            connection.finish(handler.stream)
        } catch {
            logger.warning("cannot announce to the gateway", metadata: ["error": "\(error)"])
        }
    }

    /// The kernel's id for this boot; it changes on every reboot.
    static func bootID() -> String {
        ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown")
            .trimmingASCIIWhitespace()
    }

    static func uptime() -> Double {
        let text = (try? String(contentsOfFile: "/proc/uptime", encoding: .utf8)) ?? ""
        return Double(text.split(separator: " ").first ?? "") ?? 0
    }

    /// Serves a stream the gateway opened by the service it names: the node's own, or refused.
    func serve(_ stream: StreamID, on connection: MuxConnection, metadata: [UInt8]) {
        guard let request = TunnelProtocol.decode(ServiceRequest.self, from: metadata) else {
            metrics.streamServed(service: "none", outcome: "bad_request")
            connection.reset(stream, code: TunnelErrorCode.badRequest)
            return
        }
        // The directory was made from this configuration, so each lookup below finds its service.
        switch services.route(request.service) {
        case .kubernetes:
            if let kubernetes {
                metrics.streamServed(service: request.service, outcome: "ok")
                return kubernetes.serve(stream, on: connection, identity: request.kubernetes)
            }
        case .builtIn:
            if let builtIn = configuration.builtInServices[request.service] {
                metrics.streamServed(service: request.service, outcome: "ok")
                return builtIn.serve(stream, on: connection, parameters: request.parameters ?? [:])
            }
        case .local:
            if let service = configuration.services[request.service] {
                return splice(stream, on: connection, to: service, named: request.service)
            }
        case .unknown:
            break
        }
        logger.notice("gateway asked for an unknown service", metadata: ["service": "\(request.service)"])
        metrics.streamServed(service: "other", outcome: "unknown_service")
        connection.reset(stream, code: TunnelErrorCode.unknownService)
    }

    /// Dials a configured local service and splices the stream to it once it answers.
    private func splice(_ stream: StreamID, on connection: MuxConnection, to service: LocalService, named name: String)
    {
        let address: SocketAddress
        do {
            address = try SocketAddress(ip: service.host, port: service.port)
        } catch {
            connection.reset(stream, code: TunnelErrorCode.serviceUnreachable)
            return
        }
        let timeout = configuration.serviceConnectTimeout.wholeMilliseconds
        do {
            // Bytes the operator pipelined behind the OPEN are queued on the connecting socket.
            var splice: SocketSplice?
            let socket = try StreamConnection.connect(loop: loop, to: address, timeoutMilliseconds: timeout) {
                [unowned self] result in
                guard let splice else { return }
                switch result {
                case .success:
                    metrics.streamServed(service: name, outcome: "ok")
                    do {
                        try connection.accept(stream)
                        splice.start()
                    } catch {
                        connection.reset(stream, code: .cancel)
                        splices[ObjectIdentifier(splice)] = nil
                    }
                case .failure(let error):
                    logger.notice(
                        "local service unreachable", metadata: ["service": "\(name)", "error": "\(error)"])
                    metrics.streamServed(service: name, outcome: "unreachable")
                    connection.reset(stream, code: TunnelErrorCode.serviceUnreachable)
                    splices[ObjectIdentifier(splice)] = nil
                }
            }
            try? socket.setNoDelay(true)
            let created = SocketSplice(connection: connection, stream: stream, socket: socket) { [unowned self] _ in
                guard let splice else { return }
                metrics.relayed(toService: splice.bytesToLocal, fromService: splice.bytesFromLocal)
                splices[ObjectIdentifier(splice)] = nil
                // The heap keeps its freed top between a busy stream's buffers (`Heap`); the
                // last stream's end gives it back, so an agent idles at its idle size again.
                if splices.isEmpty { Heap.returnFreePages() }
            }
            splice = created
            splices[ObjectIdentifier(created)] = created
            connection.attach(created, to: stream)
        } catch {
            connection.reset(stream, code: TunnelErrorCode.serviceUnreachable)
        }
    }
}
