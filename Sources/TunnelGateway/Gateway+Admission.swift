import Logging
import Multiplex
import TunnelAudit
import TunnelIO
import TunnelRuntime
import TunnelText

// Carries out `ConnectionAdmission`'s decisions: closes what it says to close, and writes its
// refusal summaries to the audit log. No limit is decided here.
extension Gateway {
    typealias AdmissionReason = ConnectionAdmission<ObjectIdentifier>.Reason

    /// Whether an enrollment connection gets a place (else it is refused with a GOAWAY saying why).
    func enrollmentStarted(_ connection: MuxConnection) -> Failure? {
        let tooMany = Failure(.enhanceYourCalm, "too many enrollment connections from your address; retry later")
        let place = admission.enrollmentStarted(ObjectIdentifier(connection), now: loop.now)
        handshakePlaceFreed()
        guard case .admit(let closing) = place else {
            return tooMany
        }
        if let closing {
            connections[closing]?.connection.abort(
                Failure(.enhanceYourCalm, "too many enrollment connections; retry later"))
        }
        return nil
    }

    /// Whether the request on an enrollment connection is served; a refused one ends the
    /// connection with a GOAWAY saying why (a client retries that with backoff).
    func admitEnrollmentRequest(_ connection: MuxConnection, stream: StreamID) -> Bool {
        switch admission.enrollmentRequest(ObjectIdentifier(connection), now: loop.now) {
        case .serve:
            return true
        case .refuse(let reason):
            connection.reset(stream, code: .refusedStream)
            let limit = admission.limits.enrollmentsPerSourcePerMinute
            connection.abort(
                Failure(
                    .enhanceYourCalm,
                    reason == .enrollmentRate
                        ? "too many enrollment attempts from your address (\(limit) a minute); retry later"
                        : "an enrollment connection serves one request; open a new one"))
            return false
        }
    }

    /// After the one reply: no more requests; the connection closes once the reply is out.
    func enrollmentServed(_ connection: MuxConnection) {
        connection.goAway(reason: "an enrollment connection serves one request")
    }

    /// A refused enrollment is counted into its source's summary, not audited on its own.
    func enrollmentRefused(_ connection: MuxConnection, reason: AdmissionReason, detail: String) {
        admission.enrollmentRefused(ObjectIdentifier(connection), reason: reason)
        logger.debug(
            "enrollment refused",
            metadata: [
                "peer.address": "\(connection.remoteAddress)", "reason": "\(reason.rawValue)", "detail": "\(detail)",
            ])
    }

    /// Every second: enrollment connections past their deadline are closed, and the refusal
    /// summaries of an interval that ended are audited (all of them at shutdown, `final`).
    func enforceAdmission(final: Bool = false) {
        let now = loop.now
        for id in admission.expiredEnrollments(now: now) {
            connections[id]?.connection.abort(
                Failure(
                    .cancel, "an enrollment connection closes \(admission.limits.enrollmentDeadline) after it opens"))
        }
        for summary in admission.takeRefusalSummaries(now: now, force: final) {
            recordSummary(summary, .enrollRefused(EnrollmentSource(source: summary.key), Self.refusals(summary)))
        }
        for summary in streamRecords.takeSummaries(now: now, force: final) {
            recordSummary(summary, .streamSummary(OperatorName(summary.key), Self.refusals(summary)))
        }
    }

    /// One audit record for a key's refusals over an interval: how many of each kind.
    private func recordSummary(_ summary: RefusalCounter.Summary, _ event: AuditEvent) {
        audit?.record(event)
        logger.notice(
            "refusals summed over an interval",
            metadata: [
                "summary.type": "\(event.type)", "summary.key": "\(summary.key)",
                "counts": "\(summary.counts.sorted { $0.key < $1.key })",
            ])
    }
}

extension Gateway {
    static func refusals(_ summary: RefusalCounter.Summary) -> RefusalSummary {
        RefusalSummary(
            keys: Int64(summary.keys), counts: summary.counts.mapValues(String.init),
            intervalMs: Int64(summary.until - summary.since))
    }
}

extension RedeemRequest {
    /// Why the request's token fields are not in the documented format (`tnl1.ID.SECRET.CAPIN`:
    /// the id by its name rule, the secret 32 lower-case hex digits), or nil. Checked before
    /// anything is looked up or recorded, so a peer's arbitrary text never reaches the store or
    /// the logs.
    var malformation: String? {
        do { try Names.check(tokenID, as: .tokenID) } catch { return error.message }
        guard secret.utf8.count == 32,
            secret.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else {
            return "the token secret is not 32 lower-case hex digits"
        }
        return nil
    }
}
