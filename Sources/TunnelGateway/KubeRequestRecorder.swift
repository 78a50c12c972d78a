import TunnelAudit
import TunnelHTTP
import TunnelKube
import TunnelRuntime

/// Records each Kubernetes API request of a `kubernetes` stream as its own audit record
/// (`kube_request`, `docs/AUDIT.md`), as `ShellRecorder` records a shell.
///
/// The gateway is where this happens because it is the one trusted recorder that sees every
/// stream's plaintext (TLS is hop by hop), and because an operator cannot bypass it: it reads
/// the request heads going to the node and the status lines coming back, paired by
/// `HTTPConversation`, and writes one record per request when its response head arrives (so a
/// `logs -f`, a watch or an exec is on record at its start, with `101` or `200`). Requests
/// never answered are recorded when the stream ends, without a code. Once an upgrade is agreed
/// the bytes are exec or port-forward traffic and are not parsed.
///
/// A stream whose HTTP does not parse, or that sends requests faster than `RequestRate`
/// allows, cannot be audited faithfully: `feed` returns the reason and the gateway cuts it.
/// Loop-confined, like the relay that feeds it.
final class KubeRequestRecorder {
    private let conversation = HTTPConversation()
    private var rate = RequestRate()
    /// The stream and who it belongs to, as every record of it names them.
    private let parties: StreamParties
    /// The identity the gateway asserted for the stream.
    private let identity: KubernetesIdentity
    private let write: (AuditEvent) -> Void
    private let now: () -> UInt64
    /// How many requests were recorded, for the stream's close record.
    private(set) var recorded = 0

    /// - Parameters:
    ///   - now: milliseconds on a monotonic clock (the loop's), for the request rate.
    ///   - write: appends one audit record.
    init(
        parties: StreamParties, identity: KubernetesIdentity, now: @escaping () -> UInt64,
        write: @escaping (AuditEvent) -> Void
    ) {
        self.parties = parties
        self.identity = identity
        self.now = now
        self.write = write
    }

    /// Sees relayed bytes; returns why the stream must be cut, or nil.
    func feed(_ bytes: ArraySlice<UInt8>, direction: StreamRelay.Direction) -> String? {
        do throws(KubeProxyError) {
            switch direction {
            case .fromFirst:
                for case .head(_) in try conversation.fromClient(Array(bytes)) {
                    guard rate.admit(now: now()) else { throw .rateLimited(perSecond: RequestRate.perSecond) }
                }
            case .fromSecond:
                for case .response(let status, let request) in try conversation.fromServer(Array(bytes)).server {
                    recordRequest(request, status: status)
                }
            }
        } catch {
            return "the Kubernetes request cannot be audited: \(error)"
        }
        return nil
    }

    /// The stream ended: requests that got no response are recorded without a code.
    func finish() {
        for request in conversation.unanswered { recordRequest(request, status: nil) }
    }

    private func recordRequest(_ head: HTTPHead, status: Int?) {
        guard let request = KubeRequest(head) else { return }
        recorded += 1
        var record = KubeAPIRequest(
            kubeUser: identity.user, kubeGroups: identity.groups, verb: request.verb, path: request.path)
        record.apiGroup = request.apiGroup
        record.resource = request.resource
        record.subresource = request.subresource
        record.namespace = request.namespace
        record.name = request.name
        record.command = request.command
        record.code = status.map { Int64($0) }
        write(.kubeRequest(parties, record))
    }
}
