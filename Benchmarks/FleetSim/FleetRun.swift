import Foundation
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// The phases of one simulator run, driven from the main thread: identities (cached or
/// enrolled), the fleet online, the operators' load with flaps, the drain, the report.
final class FleetRun {
    let options: Options
    let stats = FleetStats()
    let board: NodeBoard
    let workers: [LoopWorker]
    let stop = StopFlag()
    let cache: IdentityCache?
    private let started = monotonicNanos()

    init(options: Options) throws {
        self.options = options
        let names = (0..<options.nodes).map { options.namePrefix + String(format: "%05d", $0) }
        board = NodeBoard(names: names)
        stats.configure(nodes: options.nodes)
        let target = Target(
            gateway: try SocketAddress(ip: options.gatewayHost, port: options.gatewayPort),
            serverName: options.serverName, resumes: !options.fullHandshakes)
        let stats = stats
        workers = (0..<options.loops).map { _ in LoopWorker(target: target, stats: stats) }
        cache = options.identities.map(IdentityCache.init(directory:))
        installSignals()
    }

    var elapsed: Double { Double(monotonicNanos() &- started) / 1e9 }

    private func installSignals() {
        let stats = stats, stop = stop
        workers[0].run { worker in
            let loop = worker.context.loop
            do {
                worker.signals = [
                    try SignalWatcher(loop: loop, signal: Signal(number: SIGUSR1)) { _ in
                        stats.markRestart(nanos: monotonicNanos())
                    },
                    try SignalWatcher(loop: loop, signal: .interrupt) { _ in stop.set() },
                    try SignalWatcher(loop: loop, signal: .terminate) { _ in stop.set() },
                ]
            } catch {
                stats.error("cannot watch signals: \(error)")
            }
        }
    }

    /// The nodes' identities: from the cache, enrolling (with the token) those it lacks.
    func identities() throws -> [TLSIdentity] {
        guard let cache, options.nodes > 0 else { return [] }
        try cache.prepare()
        let token = try options.token.map { text throws -> JoinToken in try JoinToken.parse(text) }
        if let token, let cachedCA = cache.gatewayCA(), cachedCA.sha256Fingerprint != token.caPin {
            throw UsageError(
                "\(cache.directory) holds identities from another gateway (its CA is not the token's); use a fresh directory"
            )
        }
        var missing: [Int] = []
        for (index, name) in board.names.enumerated() where cache.load(name) == nil { missing.append(index) }
        if !missing.isEmpty {
            guard let token else {
                throw UsageError(
                    "\(missing.count) of the \(options.nodes) nodes are not enrolled in \(cache.directory); give --token"
                )
            }
            try enroll(missing, token: token, cache: cache)
        }
        return try board.names.map { name in
            guard let identity = cache.load(name) else {
                throw FleetFailure("node \(name) has no identity after enrollment (see the errors above)")
            }
            return identity
        }
    }

    private func enroll(_ indices: [Int], token: JoinToken, cache: IdentityCache) throws {
        let begin = monotonicNanos()
        say("enrolling \(indices.count) nodes, \(options.enrollConcurrency) at a time")
        let group = DispatchGroup()
        let perWorker = max(1, options.enrollConcurrency / workers.count)
        for (number, worker) in workers.enumerated() {
            let jobs = try indices.filter { $0 % workers.count == number }.map {
                (index: $0, name: board.names[$0], source: try sourceAddress(base: options.sourceBase, index: $0))
            }
            group.enter()
            worker.run { worker in
                do {
                    worker.enroller = try Enroller(
                        context: worker.context, cache: cache, token: token, jobs: jobs,
                        concurrency: perWorker
                    ) { group.leave() }
                    worker.enroller?.start()
                } catch {
                    worker.context.stats.error("cannot enroll: \(error)")
                    group.leave()
                }
            }
        }
        while group.wait(timeout: .now() + options.statusInterval) == .timedOut {
            say(String(format: "[%7.1fs] enrolled %d/%d", elapsed, stats.read { $0.enrolled }, indices.count))
        }
        let seconds = Double(monotonicNanos() &- begin) / 1e9
        let enrolled = stats.read { $0.enrolled }
        say(
            String(
                format: "ENROLLED %d/%d in %.1f s (%.0f a second), %d failed attempts",
                enrolled, indices.count, seconds, Double(enrolled) / max(seconds, 0.001),
                stats.read { $0.enrollFailures }))
    }

    /// Starts every node on its loop and waits until all are admitted (or the timeout).
    func bringOnline(_ identities: [TLSIdentity]) throws -> Bool {
        guard !identities.isEmpty, let gatewayCA = cache?.gatewayCA() else { return true }
        let begin = monotonicNanos()
        for (number, worker) in workers.enumerated() {
            let rate = options.connectRate
            let mine = try identities.indices.filter { $0 % workers.count == number }.map {
                (
                    index: $0, identity: identities[$0], source: try sourceAddress(base: options.sourceBase, index: $0),
                    delay: rate > 0 ? UInt64(Double($0) / rate * 1000) : 0
                )
            }
            let board = board
            worker.run { worker in
                for node in mine {
                    let virtual = VirtualNode(
                        index: node.index, context: worker.context, board: board, identity: node.identity,
                        gatewayCA: gatewayCA, source: node.source)
                    worker.nodes[node.index] = virtual
                    virtual.start(after: node.delay)
                }
            }
        }
        let online = waitUntil(timeout: options.onlineTimeout, label: "coming online") {
            stats.read { $0.online } == options.nodes
        }
        let seconds = Double(monotonicNanos() &- begin) / 1e9
        say(String(format: "ONLINE %d/%d after %.1f s", stats.read { $0.online }, options.nodes, seconds))
        return online
    }

    func startOperators() throws {
        let bundles = try options.operatorBundles.map(OperatorBundle.load(path:))
        let plan = LoadPlan(
            concurrency: options.streamsPerOperator, rate: options.streamRate, sizes: options.sizes,
            services: options.services, stallTimeout: options.stallTimeout, openBeforeHello: options.openBeforeHello)
        for (number, bundle) in bundles.enumerated() {
            let board = board
            workers[number % workers.count].run { worker in
                do {
                    let virtual = try VirtualOperator(
                        number: number, context: worker.context, board: board, bundle: bundle, plan: plan)
                    worker.operators.append(virtual)
                    virtual.start()
                } catch {
                    worker.context.stats.error("operator \(number): \(error)")
                }
            }
        }
    }

    /// The load phase: status lines, flaps, until the duration ends or a signal says stop.
    func runLoad() {
        let begin = monotonicNanos()
        var previousBytes: UInt64 = 0
        var nextStatus = options.statusInterval
        var nextFlap = options.flapInterval
        while !stop.isSet {
            usleep(50_000)
            let now = Double(monotonicNanos() &- begin) / 1e9
            if options.duration > 0, now >= options.duration { break }
            if now >= nextStatus {
                say(stats.statusLine(elapsed: elapsed, previousBytes: &previousBytes, interval: options.statusInterval))
                nextStatus += options.statusInterval
            }
            if options.flapFraction > 0, now >= nextFlap {
                flap()
                nextFlap += options.flapInterval
            }
        }
    }

    private func flap() {
        let count = Int((Double(options.nodes) * options.flapFraction).rounded())
        let chosen = Array(0..<options.nodes).shuffled().prefix(count)
        let downtime = options.flapDowntime
        say("FLAP \(count) nodes")
        for (number, worker) in workers.enumerated() {
            let mine = chosen.filter { $0 % workers.count == number }
            worker.run { worker in mine.forEach { worker.nodes[$0]?.flap(downtime: downtime) } }
        }
    }

    /// Operators stop opening streams; waits for those in flight, then for every node to be back.
    func drain() -> Bool {
        for worker in workers { worker.run { $0.operators.forEach { $0.drain() } } }
        let drained = waitUntil(timeout: options.settleTimeout, label: "draining streams") {
            stats.read { $0.streamsInFlight } == 0
        }
        let settled = waitUntil(timeout: options.settleTimeout, label: "waiting for every node") {
            stats.read { $0.online } == options.nodes
        }
        say(
            "SETTLED streams in flight \(stats.read { $0.streamsInFlight }), online \(stats.read { $0.online })/\(options.nodes)"
        )
        return drained && settled
    }

    private func waitUntil(timeout: Double, label: String, _ condition: () -> Bool) -> Bool {
        let begin = monotonicNanos()
        var nextStatus = options.statusInterval
        var previousBytes = stats.read { $0.bytesVerified }
        while !condition() {
            let waited = Double(monotonicNanos() &- begin) / 1e9
            if waited >= timeout || stop.isSet { return condition() }
            if waited >= nextStatus {
                say(
                    stats.statusLine(elapsed: elapsed, previousBytes: &previousBytes, interval: options.statusInterval)
                        + " (\(label))")
                nextStatus += options.statusInterval
            }
            usleep(20_000)
        }
        return true
    }

    /// Writes the node states and the JSON report, keeps the fleet idle for `--linger`, stops
    /// every loop, prints the summary, and returns the exit status.
    func finish(settled: Bool) -> Int32 {
        stats.finishEpisode()
        let seconds = elapsed
        if let path = options.nodeState {
            _ = FileManager.default.createFile(atPath: path, contents: Data(board.stateText().utf8))
        }
        let report = stats.reportJSON(seconds: seconds, extra: ["settled": settled, "failed": stats.failed])
        if let path = options.report,
            let data = try? JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
        {
            _ = FileManager.default.createFile(atPath: path, contents: data)
        }
        let summary = stats.summary(seconds: seconds)
        if options.linger > 0 {
            say("LINGER \(options.linger) s")
            pause(options.linger)
        }
        workers.forEach { $0.shutdown(seconds: 5) }
        say(summary)
        if stats.failed {
            say("FAILED: bytes wrong or streams lost without a reason (see the errors above)")
            return 1
        }
        say("OK: every byte checked, no stream lost without a reason")
        return 0
    }

    /// Waits `seconds` with status lines, or until a signal says stop.
    func pause(_ seconds: Double) {
        _ = waitUntil(timeout: seconds, label: "idle") { false }
    }
}
