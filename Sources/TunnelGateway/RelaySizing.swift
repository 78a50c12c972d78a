import Multiplex

/// How much a relayed stream may make the gateway hold. Every byte a stream's receive window lets
/// its sender send may wait in the gateway until the other side takes it, so per direction the
/// gateway holds its receive window, plus what it queues towards the other side before it stops
/// returning credit (`StreamRelay`). With 200 bulk streams the defaults of an end point (256 KiB
/// windows, 256 KiB send buffers) made that 200 MiB. The gateway's own settings are smaller:
/// a lone stream on a long path still gets the window it needs by growth, lent from a shared
/// budget that caps all streams together.
enum RelaySizing {
    /// Receive window a relayed stream starts with (advertised in the gateway's HELLO): 64 KiB
    /// covers loopback and a LAN; a longer path doubles it each round trip while it is the limit.
    static let initialStreamWindow: UInt32 = 64 * 1024
    /// Bytes the gateway queues towards the other side before the relay withholds credit from the
    /// sender: one full DATA frame, so credit goes back about as the bytes leave the gateway, and
    /// what a direction holds is its window, not a window plus a send buffer.
    static let sendBufferLimit = Limits.maxDataPayload
    /// Window growth all relayed streams share (`WindowBudget`): one bulk stream can still reach
    /// a 16 MiB window, and 200 of them hold their initial windows plus this.
    static let windowBudgetBytes: Int64 = 16 << 20

    /// What relayed streams may hold at most, over the gateway's idle size: every stream's initial
    /// window and send buffer both ways, plus the growth budget.
    static func bound(streams: Int) -> Int64 {
        Int64(streams) * 2 * (Int64(initialStreamWindow) + Int64(sendBufferLimit)) + windowBudgetBytes
    }
}

extension SessionConfiguration {
    /// The gateway's sessions, sized for relaying (`RelaySizing`).
    mutating func sizeForRelaying() {
        initialStreamWindow = RelaySizing.initialStreamWindow
        sendBufferLimit = RelaySizing.sendBufferLimit
        windowBudget = WindowBudget(capacity: RelaySizing.windowBudgetBytes)
    }
}
