import Multiplex
import TunnelAudit
import TunnelRuntime

/// Why a relayed stream ended, as its `stream_close` audit record says it: a stable `reason` an
/// auditor can filter on, and the sentence (an OpenSSL error, a peer's text) in `detail`, apart
/// (docs/AUDIT.md §10). A decision from what the relay reported and the state of the two
/// connections; it records nothing itself.
enum StreamCloseReason {
    static let recordingFailed = "recording_failed"
    static let nodeConnectionLost = "node_connection_lost"
    static let operatorConnectionLost = "operator_connection_lost"
    static let streamReset = "stream_reset"

    /// The close record's `outcome`, `reason` and `detail` for a relay that ended with `failure`
    /// (nil: both sides finished).
    static func close(for failure: Failure?, operatorConnection: MuxConnection, nodeConnection: MuxConnection)
        -> StreamClose
    {
        guard let failure else { return StreamClose(outcome: .closed) }
        let reason: String
        if failure.code == TunnelErrorCode.auditUnavailable {
            reason = recordingFailed
        } else if nodeConnection.isEnding {
            reason = nodeConnectionLost
        } else if operatorConnection.isEnding {
            reason = operatorConnectionLost
        } else {
            reason = streamReset
        }
        return StreamClose(outcome: .reset, reason: reason, detail: "\(failure)")
    }
}
