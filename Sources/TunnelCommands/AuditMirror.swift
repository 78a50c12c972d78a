import Foundation
import Logging
import TunnelOperator
import TunnelRuntime
import TunnelTLS

/// `tunnel audit serve --gateway`: copies the gateway's audit directory over the tunnel, as the
/// auditor's own operator login (a role with `audit: true`), into a local directory that the
/// console then verifies and serves like any copy. The gateway records the read.
enum AuditMirror {
    static func fetch(settings: OperatorSettings, logger: Logger, into directory: String) throws(CommandFailure) {
        var failure: String?
        let code = try withOperatorSession(settings, logger: logger) { session in
            session.ask(.auditRead(.list), reply: AuditReadReply.self) { result in
                switch result {
                case .success(let reply) where reply.error == nil:
                    copy(reply.files ?? [], from: session, into: directory) { error in
                        failure = error
                        session.finish(error == nil ? 0 : CommandFailure.failureExitCode)
                    }
                case .success(let reply):
                    failure = reply.error
                    session.finish(CommandFailure.failureExitCode)
                case .failure(let error):
                    failure = error.message
                    session.finish(CommandFailure.failureExitCode)
                }
            }
        }
        if code != 0 {
            throw CommandFailure(
                "cannot read the gateway's audit log: \(failure ?? "the connection ended")",
                code: .gatewayRequestFailed, exitCode: code)
        }
    }

    /// Fetches the files one after another, each up to the size it had when listed (segments only
    /// grow), then cuts a segment after its last complete line: a record being written at the
    /// moment of the listing is left for the next read, not shown torn.
    private static func copy(
        _ files: [AuditFileInfo], from session: OperatorSession, into directory: String,
        done: @escaping (String?) -> Void
    ) {
        guard let file = files.first else { return done(nil) }
        guard AuditReadReply.isAuditFile(file.name) else {
            return done("the gateway offered \(file.name), which is not an audit file")
        }
        var bytes: [UInt8] = []
        func next() {
            let request = OperatorRequest.auditRead(.fetch(file: file.name, offset: Int64(bytes.count)))
            session.ask(request, reply: AuditReadReply.self) { result in
                guard case .success(let reply) = result, reply.error == nil,
                    let chunk = reply.data.flatMap({ Data(base64Encoded: $0) })
                else {
                    return done("cannot fetch \(file.name): \((try? result.get())?.error ?? "no answer")")
                }
                bytes += chunk
                if !chunk.isEmpty, bytes.count < file.size { return next() }
                if bytes.count > file.size { bytes.removeLast(bytes.count - Int(file.size)) }
                if file.name.hasSuffix(".jsonl"), let end = bytes.lastIndex(of: 0x0A) {
                    bytes.removeSubrange((end + 1)...)
                }
                do {
                    if file.name.hasPrefix("recordings/") { try makePrivateDirectory("\(directory)/recordings") }
                    try DurableFile.write(path: "\(directory)/\(file.name)", bytes: bytes, mode: 0o600)
                } catch {
                    return done("cannot write \(file.name): \(error)")
                }
                copy(Array(files.dropFirst()), from: session, into: directory, done: done)
            }
        }
        next()
    }
}
