import Foundation
import Logging
import TunnelAudit
import TunnelMetrics
import TunnelTLS

/// The gateway's audit trail (`docs/AUDIT.md`): every event as one hash-chained record, with
/// signed checkpoints. Records that gate an action (a stream's open record) are durable before
/// the action proceeds; when the log cannot be written, the gateway admits no new streams until
/// a retry succeeds, and says so in its log and in `tunnel nodes`. Loop-confined.
final class AuditTrail {
    /// Segments and recordings; what auditors copy and verify.
    let directory: String
    private let log: AuditLog
    private let logger: Logger
    private let metrics: GatewayMetrics?
    /// Why the last write failed, while the log refuses records.
    private(set) var failure: String?

    /// Stream records are matched per stream, not per connection: one connection carries many.
    static let streamRecords = StreamRecordNames(sessionField: "stream")

    /// Opens (or recovers) the log in `directory`, signing with the key in `keyDirectory`, which
    /// is kept apart from the log so that an exported log never carries the private key. After a
    /// crash, every stream left open gets its close record with outcome `gateway_crash`.
    /// - Parameter replica: the cluster replica writing the log; nil for a lone gateway.
    init(
        directory: String, keyDirectory: String, configuration: AuditLogConfiguration = AuditLogConfiguration(),
        replica: String? = nil,
        logger: Logger, metrics: GatewayMetrics? = nil
    ) throws(AuditError) {
        self.directory = directory
        self.logger = logger
        self.metrics = metrics
        let key = try AuditSigningKey.loadOrCreate(keyDirectory: keyDirectory)
        var configuration = configuration
        configuration.streamRecords = Self.streamRecords
        // A cluster replica names itself in every record, the log's own ones too (docs/AUDIT.md §11).
        if let replica { configuration.everyRecord["replica"] = .string(replica) }
        log = try AuditLog(directory: directory, signingKey: key, policy: configuration, now: Date())
        // A copy of the public key beside the log, for convenience; auditors should still take
        // the key id from somewhere else (docs/AUDIT.md §2).
        try? DurableFile.write(
            path: "\(directory)/\(AuditSigningKey.publicKeyFileName)", bytes: key.publicKey.pem(), mode: 0o644)
        if let recovery = log.recovery, !recovery.cleanShutdown {
            logger.warning(
                "audit log recovered after an unclean stop",
                metadata: [
                    "audit.lost_bytes": "\(recovery.lostBytes)", "audit.last_good_seq": "\(recovery.lastGoodSeq)",
                ])
            for (stream, open) in log.unclosedStreams().sorted(by: { $0.key < $1.key }) {
                let close = StreamClose(
                    outcome: .gatewayCrash, reason: "the gateway stopped without closing this stream")
                try log.append(
                    .streamClose(StreamParties(stream: stream, openFields: open), close), now: Date(), durable: false)
            }
            try log.sync()
        }
        logger.info("audit log open", metadata: ["audit.dir": "\(directory)", "audit.key_id": "\(key.keyID)"])
    }

    var isHealthy: Bool { failure == nil }

    /// Appends one record. Returns false, and marks the trail failed, when it could not be
    /// written; a caller whose action needs the record (a stream open) must then refuse it.
    @discardableResult
    func record(_ event: AuditEvent, durable: Bool = false) -> Bool {
        metrics?.observe(event)
        let started = ContinuousClock.now
        do {
            try log.append(event, now: Date(), durable: durable)
            metrics?.auditWrite(seconds: Elapsed.seconds(since: started), failed: false)
            return true
        } catch {
            metrics?.auditWrite(seconds: Elapsed.seconds(since: started), failed: true)
            if failure == nil {
                logger.critical(
                    "audit log write failed: no new streams are admitted until it can be written again",
                    metadata: ["error": "\(error.message)"])
            }
            failure = error.message
            return false
        }
    }

    /// Makes every record appended so far durable (one fdatasync for a loop turn's records, see
    /// `GroupCommit`). False, and the trail failed, when it could not.
    func sync() -> Bool {
        guard failure == nil else { return false }
        let started = ContinuousClock.now
        do {
            try log.sync()
            metrics?.auditWrite(seconds: Elapsed.seconds(since: started), failed: false)
            return true
        } catch {
            metrics?.auditWrite(seconds: Elapsed.seconds(since: started), failed: true)
            logger.critical(
                "audit log sync failed: no new streams are admitted until it can be written again",
                metadata: ["error": "\(error.message)"])
            failure = error.message
            return false
        }
    }

    /// Called every second: due checkpoints, and a retry while failed.
    func tick() {
        if failure != nil {
            do {
                try log.retry(now: Date())
                failure = nil
                logger.notice("audit log writable again; streams are admitted")
            } catch {
                failure = error.message
            }
            return
        }
        do {
            try log.tick(now: Date())
        } catch {
            logger.critical(
                "audit checkpoint failed: no new streams are admitted until the log can be written again",
                metadata: ["error": "\(error.message)"])
            failure = error.message
        }
    }

    /// The final checkpoint at shutdown.
    func close() {
        do { try log.close(now: Date()) } catch {
            logger.error("audit log could not be closed cleanly", metadata: ["error": "\(error.message)"])
        }
    }
}
