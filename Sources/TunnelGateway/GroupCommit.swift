import TunnelGatewayCore
import TunnelIO

/// Group commit: the durable writes of one loop turn share one sync. Stream-open records wait
/// for the audit log's sync here instead of each syncing on its own, and the connects and
/// disconnects of a turn go to the fleet store in one transaction instead of one each. Both run
/// at the start of the next turn (a 0 ms timer), before the loop reads any socket again, so a
/// node cannot answer a stream whose open record is not yet on disk. Loop-confined.
final class GroupCommit {
    private let timer: LoopTimer
    /// Makes every audit record appended so far durable; false if it could not.
    private let syncAudit: () -> Bool
    /// Writes a batch of sightings to the store, in one transaction.
    private let saveSightings: ([String: NodeSighting]) -> Void
    private var waitingForSync: [(Bool) -> Void] = []
    private var sightings: [String: NodeSighting] = [:]
    /// Syncs and store transactions done, and what they carried; for the benchmark figures.
    private(set) var syncs = 0
    private(set) var recordsSynced = 0

    init(loop: EventLoop, syncAudit: @escaping () -> Bool, saveSightings: @escaping ([String: NodeSighting]) -> Void) {
        timer = LoopTimer(loop: loop)
        self.syncAudit = syncAudit
        self.saveSightings = saveSightings
    }

    /// `body` runs once the audit records appended so far are on disk (true), or the sync failed.
    func afterAuditSync(_ body: @escaping (Bool) -> Void) {
        waitingForSync.append(body)
        schedule()
    }

    func nodeSeen(_ name: String, _ sighting: NodeSighting) {
        sightings[name] = sightings[name].map { $0.followed(by: sighting) } ?? sighting
        schedule()
    }

    /// Writes what is pending now (at shutdown, or from a test).
    func flush() {
        timer.stop()
        if !sightings.isEmpty {
            let batch = sightings
            sightings = [:]
            saveSightings(batch)
        }
        guard !waitingForSync.isEmpty else { return }
        let waiting = waitingForSync
        waitingForSync = []
        let synced = syncAudit()
        syncs += 1
        recordsSynced += waiting.count
        for body in waiting { body(synced) }
    }

    func close() {
        flush()
        timer.close()
    }

    private func schedule() {
        // After `close`, the gateway is stopping: nothing waits for a next turn.
        if timer.isClosed { return flush() }
        guard !timer.isActive else { return }
        timer.start(after: 0) { [unowned self] in flush() }
    }
}
