import Foundation
import Multiplex
import TunnelAudit
import TunnelRuntime
import TunnelTLS

// Auditors reading the audit directory over the tunnel (`tunnel audit serve --gateway`).
extension Gateway {
    /// Needs `audit: true` on one of the operator's roles. A listing is the start of a read and
    /// is recorded (durably, before the answer, like reads through the admin socket); the
    /// chunk fetches that follow are not recorded one by one.
    func serveAuditRead(
        _ request: AuditReadRequest, operatorName name: String, roles: [String], connection: MuxConnection,
        stream: StreamID
    ) {
        let reader = auditOperator(name, connection, roles: roles)
        guard authority.policy.readsAudit(roles: roles) else {
            audit?.record(
                .admin(
                    .auditRead, by: reader,
                    AdminAction(action: "list over the tunnel", outcome: "denied", reason: "no audit role")))
            return connection.reply(
                AuditReadReply(
                    error:
                        "you (\(name), roles \(roles.joined(separator: ", "))) have no role with audit: true in policy \(authority.policy.version)"
                ), on: stream)
        }
        guard let audit else {
            return connection.reply(AuditReadReply(error: "this gateway keeps no audit log"), on: stream)
        }
        switch request {
        case .list:
            guard
                audit.record(
                    .admin(.auditRead, by: reader, AdminAction(action: "list over the tunnel", outcome: "ok")),
                    durable: true)
            else {
                return connection.reply(
                    AuditReadReply(
                        error:
                            "the audit log cannot be written, so reading it cannot be recorded: \(audit.failure ?? "")"),
                    on: stream)
            }
            connection.reply(AuditReadReply(files: Self.auditFiles(in: audit.directory)), on: stream)
        case .fetch(let file, let offset):
            connection.reply(Self.auditChunk(of: file, offset: offset, in: audit.directory), on: stream)
        }
    }

    static func auditFiles(in directory: String) -> [AuditFileInfo] {
        let manager = FileManager.default
        let top = (try? manager.contentsOfDirectory(atPath: directory)) ?? []
        let recordings = ((try? manager.contentsOfDirectory(atPath: "\(directory)/recordings")) ?? []).map {
            "recordings/\($0)"
        }
        return (top + recordings).sorted().filter(AuditReadReply.isAuditFile).compactMap { name in
            guard let size = (try? manager.attributesOfItem(atPath: "\(directory)/\(name)"))?[.size] as? NSNumber else {
                return nil
            }
            return AuditFileInfo(name: name, size: size.int64Value)
        }
    }

    static func auditChunk(of file: String, offset: Int64, in directory: String) -> AuditReadReply {
        guard AuditReadReply.isAuditFile(file), offset >= 0,
            let handle = FileHandle(forReadingAtPath: "\(directory)/\(file)")
        else {
            return AuditReadReply(error: "\(file) is not a file of the audit log")
        }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: UInt64(offset))
            let bytes = try handle.read(upToCount: AuditReadReply.maxChunk) ?? Data()
            return AuditReadReply(data: bytes.base64EncodedString())
        } catch {
            return AuditReadReply(error: "cannot read \(file): \(error)")
        }
    }
}
