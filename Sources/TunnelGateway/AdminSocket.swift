import Foundation
import TunnelIO
import TunnelRuntime

extension Gateway {
    /// Opens the local admin socket: root (or the gateway's own user) on this host may run admin
    /// commands without an operator certificate — how the first admin user is made.
    public func startAdminSocket(path: String) throws(IOError) {
        adminListener = try UnixListener(loop: loop, path: path, mode: 0o600) { [unowned self] result in
            switch result {
            case .success(let connection): serveAdmin(connection)
            case .failure(let error): logger.warning("admin socket accept failed", metadata: ["error": "\(error)"])
            }
        }
        logger.info("admin socket open", metadata: ["admin.socket": "\(path)"])
    }

    private func serveAdmin(_ connection: StreamConnection) {
        let credentials: (pid: Int32, uid: UInt32, gid: UInt32)
        do {
            credentials = try connection.peerCredentials()
        } catch {
            connection.close()
            return
        }
        // The socket's mode already keeps others out; this also refuses a socket made readable by mistake.
        guard credentials.uid == 0 || credentials.uid == geteuid() else {
            logger.notice("admin socket: peer refused", metadata: ["peer.uid": "\(credentials.uid)"])
            respond(
                .refused(
                    AdminFailure(
                        .notAllowed,
                        "only root or the gateway's user may use the admin socket (you are uid \(credentials.uid))")),
                on: connection)
            return
        }
        var reader = AdminChannel.LineReader()
        do {
            try connection.startReading { [unowned self] event in
                switch event {
                case .data(let bytes):
                    if let line = reader.append(bytes) {
                        connection.stopReading()
                        let reply =
                            TunnelProtocol.decode(AdminRequest.self, from: line).map {
                                administer($0, actor: "local admin (uid \(credentials.uid), pid \(credentials.pid))")
                            }
                            ?? .refused(
                                AdminFailure(
                                    .invalid,
                                    "the admin request was not understood (is this tunnel older than the gateway?)"))
                        respond(reply, on: connection)
                    } else if reader.overflowed {
                        respond(.refused(AdminFailure(.invalid, "admin request too long")), on: connection)
                    }
                case .end, .error:
                    connection.close()
                }
            }
        } catch {
            connection.close()
        }
    }

    private func respond(_ reply: AdminReply, on connection: StreamConnection) {
        do {
            try connection.write(TunnelProtocol.encode(reply) + [UInt8(ascii: "\n")]) { _ in connection.close() }
        } catch {
            connection.close()
        }
    }
}
