import Logging
import Multiplex
import TunnelAudit

/// The two clocks a gateway decision reads, passed in by the caller: the loop's monotonic
/// milliseconds (budgets, windows) and the wall clock in Unix seconds (certificates, records).
package struct Moment: Equatable, Sendable {
    /// Monotonic milliseconds (the loop's `now`).
    package var loop: UInt64
    /// Unix seconds, with their fraction.
    package var unix: Double

    package init(loop: UInt64, unix: Double) {
        self.loop = loop
        self.unix = unix
    }

    /// Whole Unix seconds, as certificates and the fleet store count them.
    package var unixSeconds: Int64 { Int64(unix) }
}

/// What `GatewayCore` asks its IO shell to do, in the order given. The core itself never
/// writes, closes, logs or schedules anything; the shell carries these out and nothing else.
package enum GatewayIntent<ID: Hashable>: Equatable {
    /// Append this record to the audit log; `durable` syncs it before going on.
    case record(AuditEvent, durable: Bool)
    /// End the connection at once, telling the peer why (GOAWAY with the failure, then close).
    case abort(ID, Failure)
    case log(Logger.Level, Logger.Message, Logger.Metadata)
    /// Write this connect or disconnect of a node to the fleet store, with the turn's others.
    case nodeSeen(String, NodeSighting)
    /// The node's session on this replica ended: release its cluster presence.
    case presenceEnded(node: String)
    /// Refuse the operator's stream with a code and the sentence it reads (`StreamRefusal`).
    case refuseStream(ID, StreamID, code: ErrorCode, sentence: String)
    /// A stream request past the operator's record budget: counted into its summary by outcome.
    case countUnrecordedStream(String, outcome: String)
    /// An admitted stream: record its open and relay it over the connection `via`.
    case openRelay(StreamRequest<ID>, via: ID)

    /// An audit record synced with the loop turn's others.
    static func record(_ event: AuditEvent) -> Self { .record(event, durable: false) }
}
