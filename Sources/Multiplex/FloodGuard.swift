/// Counts what a hostile peer could repeat cheaply, over fixed windows of `Limits.abuseWindow`,
/// and says when the peer went past its allowance (`docs/PROTOCOL.md` §9).
struct FloodGuard {
    let maxResets: Int
    let maxIdleFrames: Int
    private var windowEnd: Timestamp?
    private var resets = 0
    private var completedStreams = 0
    private var idleFrames = 0
    private var dataFramesSent = 0

    init(maxResets: Int, maxIdleFrames: Int) {
        self.maxResets = maxResets
        self.maxIdleFrames = maxIdleFrames
    }

    private mutating func roll(_ now: Timestamp) {
        if let end = windowEnd, now < end { return }
        windowEnd = now + Limits.abuseWindow
        resets = 0
        completedStreams = 0
        idleFrames = 0
        dataFramesSent = 0
    }

    /// The peer reset a stream it opened itself. Rapid open-and-reset cycles cost the receiver
    /// work without any stream completing (CVE-2023-44487); completed streams earn back room, so a
    /// busy healthy peer is never cut off. Resets we send or relay are never recorded here: they
    /// are not the peer's doing, and counting them let one client of a relay spend another's
    /// allowance.
    mutating func recordReset(now: Timestamp) throws(Failure) {
        roll(now)
        resets += 1
        if resets > maxResets + completedStreams {
            throw Failure(
                .enhanceYourCalm,
                "\(resets) streams reset within \(Limits.abuseWindow) with \(completedStreams) completed")
        }
    }

    mutating func recordCompletedStream(now: Timestamp) {
        roll(now)
        completedStreams += 1
    }

    /// A frame that moved no stream forward: a ping, empty DATA without FIN, a window update,
    /// a frame for an already-closed stream, an OPEN we refused, DATA after the peer's FIN. Window updates legitimately follow our DATA, so each
    /// DATA frame we sent allows two more.
    mutating func recordIdleFrame(now: Timestamp) throws(Failure) {
        roll(now)
        idleFrames += 1
        if idleFrames > maxIdleFrames + 2 * dataFramesSent {
            throw Failure(.enhanceYourCalm, "\(idleFrames) frames without stream progress within \(Limits.abuseWindow)")
        }
    }

    mutating func recordDataFrameSent(now: Timestamp) {
        roll(now)
        dataFramesSent += 1
    }
}
