/// Everything the session keeps for one stream. A class so the session can hold it in the
/// table and in local variables without copying the queue around.
final class StreamRecord {
    let id: StreamID
    var state: StreamState
    let interactive: Bool
    var sendCredit: SendCredit
    var receiveWindow: ReceiveWindow
    var sendQueue = ChunkQueue()
    var finishQueued = false
    var openSent = false
    var scheduled = false
    var wantsWritable = false
    var windowUpdateQueued = false

    init(id: StreamID, state: StreamState, interactive: Bool, sendCredit: UInt32, configuration: SessionConfiguration) {
        self.id = id
        self.state = state
        self.interactive = interactive
        self.sendCredit = SendCredit(initial: sendCredit)
        receiveWindow = ReceiveWindow(
            initial: configuration.initialStreamWindow, max: configuration.maxStreamWindow,
            budget: configuration.windowBudget)
    }

    /// Whichever way the stream ended (closed, reset, or its session failed), its window's loan
    /// goes back once nothing refers to it.
    deinit {
        receiveWindow.release()
    }

    func isLocal(_ role: Role) -> Bool {
        (id & 1 == 1) == (role == .dialer)
    }

    /// Bytes or a FIN are waiting to go out.
    var hasSendWork: Bool { sendQueue.byteCount > 0 || finishQueued }

    /// Whether a DATA frame can go out now: bytes and credit, or only a FIN.
    func canEmitData(connectionCredit: Int64) -> Bool {
        if sendQueue.byteCount == 0 { return finishQueued }
        return sendCredit.available > 0 && connectionCredit > 0
    }
}
