/// Fixed limits of protocol version 1. Each one bounds what a peer can make us hold or do;
/// `docs/PROTOCOL.md` §9 lists them with the response to a peer that exceeds them.
public enum Limits {
    /// Bytes of every frame header.
    public static let frameHeaderLength = 8
    /// Largest DATA payload: small frames keep an interactive stream from waiting behind a bulk
    /// one for more than 16 KiB of serialisation time.
    public static let maxDataPayload = 16 * 1024
    /// Largest OPEN or ACCEPT metadata: enough for a service name and labels, too small for a
    /// header-flood of the HTTP/2 CONTINUATION kind.
    public static let maxMetadataLength = 4 * 1024
    /// Largest GOAWAY debug message.
    public static let maxGoAwayMessage = 256
    /// HELLO is 16 bytes in version 1; later versions may append settings up to this length.
    public static let maxHelloPayload = 256
    /// Largest payload of any frame; the decoder rejects a longer length before buffering a byte.
    public static let maxFramePayload = maxDataPayload
    /// Stream IDs are 31 bits, like HTTP/2, so the top bit stays free and IDs never wrap.
    public static let maxStreamID: UInt32 = (1 << 31) - 1
    /// Flow-control windows and credits never exceed this; a window update that would is an error.
    public static let maxWindow: Int64 = (1 << 31) - 1
    /// Length of the fixed window over which flood counters are kept.
    public static let abuseWindow: Duration = .seconds(10)
}

/// Which end of the transport this session is: it fixes the parity of the stream IDs it opens,
/// so the two ends never pick the same ID.
public enum Role: Sendable, Hashable {
    /// The side that dialed the connection; opens odd stream IDs.
    case dialer
    /// The side that accepted the connection; opens even stream IDs.
    case acceptor

    var firstStreamID: UInt32 { self == .dialer ? 1 : 2 }
}

/// Tunables of one session. The defaults are the ones in `docs/PROTOCOL.md`.
public struct SessionConfiguration: Sendable {
    /// Streams the peer may have open towards us at once; advertised in HELLO.
    public var maxConcurrentStreams: UInt32 = 100
    /// Receive window each new stream starts with; advertised in HELLO.
    public var initialStreamWindow: UInt32 = 256 * 1024
    /// Ceiling for a stream's receive window when auto-tuning grows it.
    public var maxStreamWindow: UInt32 = 16 * 1024 * 1024
    /// Shared by every session of a process that relays many streams (the gateway): growth of
    /// stream windows beyond `initialStreamWindow` is lent from it. Nil: each stream may grow to
    /// `maxStreamWindow` on its own.
    public var windowBudget: WindowBudget?
    /// Per-connection budget of received-but-unconsumed bytes over all streams; advertised in HELLO.
    public var connectionWindow: UInt32 = 64 * 1024 * 1024
    /// Bytes an application may queue on a stream before `write` asks it to wait.
    public var sendBufferLimit: Int = 256 * 1024
    /// A ping goes out this often; it also measures the round-trip time for window tuning.
    public var keepaliveInterval: Duration = .seconds(15)
    /// The peer is declared dead after this many intervals without a single frame from it.
    public var keepaliveMissLimit: Int = 3
    /// Ping only while streams are open, or once the peer has been silent for all but the last of
    /// its allowed intervals (PROTOCOL.md §7.1). A gateway holding thousands of idle nodes, each
    /// pinging it anyway, then sends half the keepalive records; dead peers are found as soon.
    public var pingsOnlyWhenQuiet = false
    /// Streams the peer opened and then reset itself, in one abuse window, before the connection
    /// is closed (on top of one for every stream completed in the same window).
    public var maxResetsPerWindow: Int = 200
    /// Frames that carry no stream progress (pings, empty data, window updates) allowed per
    /// abuse window, on top of two window updates for every DATA frame we sent.
    public var maxIdleFramesPerWindow: Int = 1000
    /// Replies a peer can force (pongs, window updates, resets) that may wait unsent before the
    /// peer is judged to flood without reading.
    public var maxPendingControlFrames: Int = 1024
    /// Interactive data sent back to back while bulk streams wait, before one bulk frame goes out.
    public var interactiveBurst: Int = 64 * 1024

    public init() {}

    /// The configuration with every value checked against the protocol's own bounds.
    func validated() -> SessionConfiguration {
        var checked = self
        checked.initialStreamWindow = min(
            max(initialStreamWindow, UInt32(Limits.maxDataPayload)), UInt32(Limits.maxWindow))
        checked.maxStreamWindow = min(max(maxStreamWindow, checked.initialStreamWindow), UInt32(Limits.maxWindow))
        checked.connectionWindow = min(max(connectionWindow, checked.initialStreamWindow), UInt32(Limits.maxWindow))
        checked.sendBufferLimit = max(sendBufferLimit, 1)
        checked.keepaliveMissLimit = max(keepaliveMissLimit, 1)
        return checked
    }
}
