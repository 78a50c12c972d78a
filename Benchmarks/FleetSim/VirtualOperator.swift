import Foundation
import Multiplex
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// How operators load their streams.
struct LoadPlan: Sendable {
    var concurrency: Int
    /// New streams per second; 0 opens the next as soon as one ends.
    var rate: Double
    var sizes: [(bytes: Int, weight: Int)]
    var services: [(name: String, weight: Int)]
    var stallTimeout: Double
    /// Open streams as soon as TLS is up, before the gateway's HELLO (PROTOCOL.md §4.3 queues them).
    var openBeforeHello = false
}

/// One operator: a real operator certificate, one session, `concurrency` checked streams to
/// random online nodes, each of a size and service drawn from the plan. Loop-confined.
final class VirtualOperator: MuxConnectionDelegate {
    let context: LoopContext
    let board: NodeBoard
    let number: Int
    private let tls: TLSContext
    private let plan: LoadPlan
    private(set) var connection: MuxConnection?
    /// One fill buffer for every stream of this operator (they run one at a time on the loop).
    var scratch: [UInt8] = []
    private var streams: [ObjectIdentifier: OperatorStream] = [:]
    private let tick: LoopTimer
    private var generator = SystemRandomNumberGenerator()
    private var nextSeed: UInt64
    private var credit = 0.0
    private var lastTickNanos = monotonicNanos()
    private var draining = false
    /// Set by the gateway's HELLO. Streams are opened only after it, as `tunnel`'s own operator
    /// commands do, unless the plan says otherwise (`--open-before-hello`, docs/BENCHMARKS.md).
    private var ready = false
    private var stopped = false
    var inFlight: Int { streams.count }

    init(number: Int, context: LoopContext, board: NodeBoard, bundle: OperatorBundle, plan: LoadPlan) throws {
        self.number = number
        self.context = context
        self.board = board
        self.plan = plan
        nextSeed = UInt64(number) << 40
        tls = try TLSContext(
            configuration: TLSConfiguration(
                role: .client, identity: bundle.identity,
                peerVerification: .trustedCAs([TrustedCA(.gateway, certificate: bundle.gatewayCA)]),
                applicationProtocols: [TunnelProtocol.operatorALPN]))
        tick = LoopTimer(loop: context.loop)
        scratch.reserveCapacity(64 * 1024)
    }

    func start() {
        dial()
        tick.start(after: 10, repeat: 10) { [self] in onTick() }
    }

    private func dial() {
        guard !stopped else { return }
        context.dial(from: nil, context: tls, delegate: self) { [self] result in
            switch result {
            case .success(let started):
                connection = started
                ready = false
            case .failure(let failure):
                context.stats.error("operator \(number) dial: \(failure.message)")
                let retry = LoopTimer(loop: context.loop)
                retry.start(after: 1000) { [self] in
                    retry.close()
                    dial()
                }
            }
        }
    }

    /// No new streams; the ones in flight finish.
    func drain() { draining = true }

    func stop() {
        stopped = true
        tick.close()
        connection?.abort(Failure(.noError, "simulator stopping"))
    }

    private func onTick() {
        let now = monotonicNanos()
        if plan.rate > 0 {
            credit = min(Double(plan.concurrency), credit + plan.rate * Double(now &- lastTickNanos) / 1e9)
        }
        lastTickNanos = now
        fill()
        let timeout = UInt64(plan.stallTimeout * 1e9)
        for stream in Array(streams.values) { stream.checkStall(now: now, timeoutNanos: timeout) }
    }

    /// Opens streams up to the plan's concurrency (and rate).
    private func fill() {
        guard !draining, ready || plan.openBeforeHello, let connection, connection.isEstablished, !connection.isEnding
        else { return }
        while streams.count < plan.concurrency, plan.rate == 0 || credit >= 1 {
            guard let (node, flaps) = board.pickOnline(using: &generator) else { return }
            let size = pick(plan.sizes, using: &generator)
            let service = pick(plan.services, using: &generator)
            nextSeed &+= 1
            let stream = OperatorStream(
                owner: self, node: node, nodeFlaps: flaps, service: service, size: size,
                sizeLabel: sizeLabel(size), seed: nextSeed)
            let request = OperatorRequest.connect(node: board.names[node], service: service)
            do {
                stream.stream = try connection.openStream(
                    metadata: TunnelProtocol.encode(request), interactive: size <= 16 * 1024, handler: stream)
            } catch {
                // The session's own cap (the gateway's advertised stream limit): wait for one to end.
                return
            }
            credit -= plan.rate > 0 ? 1 : 0
            streams[ObjectIdentifier(stream)] = stream
            context.stats.update {
                $0.streamsOpened += 1
                $0.streamsInFlight += 1
            }
            stream.pump()
        }
    }

    func streamEnded(_ stream: OperatorStream, outcome: OperatorStream.Outcome) {
        streams[ObjectIdentifier(stream)] = nil
        let micros = max(1, (monotonicNanos() &- stream.openedNanos) / 1000)
        let target = board.names[stream.node]
        context.stats.update { counters in
            counters.streamsInFlight -= 1
            switch outcome {
            case .completed:
                counters.streamsCompleted += 1
                _ = counters.completionLatency["\(stream.service) \(stream.sizeLabel)", default: makeLatencies()]
                    .record(micros)
            case .endedWithReason(let reason):
                counters.streamsEndedWithReason[reason, default: 0] += 1
            case .wrong:
                counters.streamsWrong += 1
            case .lost:
                counters.streamsLost += 1
            }
        }
        switch outcome {
        case .wrong(let why):
            context.stats.error("WRONG BYTES: \(stream.service) stream \(stream.stream) to \(target): \(why)")
        case .lost(let why):
            context.stats.error("LOST STREAM: \(stream.service) stream \(stream.stream) to \(target): \(why)")
        default: break
        }
        if plan.rate == 0 { fill() }
    }

    // MARK: MuxConnectionDelegate

    func connectionEstablished(_ connection: MuxConnection) -> Failure? { nil }

    func connectionReady(_ connection: MuxConnection) {
        ready = true
        fill()
    }

    func connection(_ connection: MuxConnection, peerOpened stream: StreamID, metadata: [UInt8], interactive: Bool) {
        connection.reset(stream, code: .refusedStream)
    }

    func connectionPeerGoingAway(_ connection: MuxConnection, failure: Failure) {}

    func connectionClosed(_ connection: MuxConnection, failure: Failure) {
        self.connection = nil
        guard !stopped else { return }
        context.stats.update { $0.operatorSessionsLost += 1 }
        context.stats.error("operator \(number) session lost: \(TunnelErrorCode.describe(failure))")
        let retry = LoopTimer(loop: context.loop)
        retry.start(after: 1000) { [self] in
            retry.close()
            dial()
        }
    }
}

func sizeLabel(_ bytes: Int) -> String {
    switch bytes {
    case let size where size >= 1 << 30 && size % (1 << 30) == 0: "\(size >> 30)G"
    case let size where size >= 1 << 20 && size % (1 << 20) == 0: "\(size >> 20)M"
    case let size where size >= 1 << 10 && size % (1 << 10) == 0: "\(size >> 10)K"
    default: "\(bytes)B"
    }
}
