import Foundation
import Multiplex
import TunnelRuntime

/// One checked stream of a virtual operator: it sends `size` bytes of its `Pattern` and a FIN,
/// then checks that the echo matches byte for byte, or that the sink's digest matches what was
/// sent. It ends as completed, wrong, lost, or ended by a code that says why.
final class OperatorStream: StreamHandler {
    enum Outcome {
        case completed
        /// A reason the run explains (the node was flapped) or a refusal with its code.
        case endedWithReason(String)
        case wrong(String)
        case lost(String)
    }

    unowned let owner: VirtualOperator
    let node: Int
    let nodeFlaps: Int
    let service: String
    let size: Int
    let sizeLabel: String
    var stream: StreamID = 0
    private let pattern: Pattern
    private var sent = 0
    private var received = 0
    private var sentDigest = SinkDigest()
    private var reply: [UInt8] = []
    private var refusal: String?
    private var sendFinished = false
    let openedNanos = monotonicNanos()
    private(set) var lastProgressNanos = monotonicNanos()
    private(set) var isDone = false

    init(owner: VirtualOperator, node: Int, nodeFlaps: Int, service: String, size: Int, sizeLabel: String, seed: UInt64)
    {
        self.owner = owner
        self.node = node
        self.nodeFlaps = nodeFlaps
        self.service = service
        self.size = size
        self.sizeLabel = sizeLabel
        pattern = Pattern(seed: seed)
    }

    /// Writes pattern bytes until done or the send buffer asks to wait; FIN after the last.
    func pump() {
        guard !isDone, let connection = owner.connection else { return }
        do {
            while sent < size {
                let count = min(64 * 1024, size - sent)
                pattern.fill(&owner.scratch, count: count, from: sent)
                if service == "sink" { sentDigest.add(owner.scratch[...]) }
                let keepGoing = try connection.write(owner.scratch[...], on: stream)
                sent += count
                lastProgressNanos = monotonicNanos()
                owner.context.stats.update { $0.bytesSent += UInt64(count) }
                if !keepGoing { return }
            }
            if !sendFinished {
                sendFinished = true
                connection.finish(stream)
            }
        } catch {
            end(.lost("write failed after \(sent) of \(size) bytes: \(error)"))
        }
    }

    func streamAccepted(metadata: [UInt8]) {
        if !metadata.isEmpty {
            refusal = TunnelProtocol.decode(StreamRefusal.self, from: metadata)?.message ?? "unreadable refusal"
            return
        }
        let micros = (monotonicNanos() &- openedNanos) / 1000
        owner.context.stats.update { _ = $0.acceptLatency.record(max(1, micros)) }
    }

    func streamReceived(_ bytes: ArraySlice<UInt8>) {
        guard !isDone else { return }
        lastProgressNanos = monotonicNanos()
        owner.connection?.consumed(bytes.count, on: stream)
        if service == "sink" {
            guard reply.count + bytes.count <= SinkDigest.size else {
                return end(.wrong("the sink answered more than its digest"))
            }
            reply.append(contentsOf: bytes)
            return
        }
        if received + bytes.count > size {
            return end(.wrong("the echo returned more than the \(size) bytes sent"))
        }
        if let mismatch = pattern.firstMismatch(bytes, at: received) {
            owner.context.stats.update { $0.bytesWrong += UInt64(bytes.count - mismatch) }
            return end(.wrong("echo byte \(received + mismatch) of \(size) differs"))
        }
        received += bytes.count
        owner.context.stats.update { $0.bytesVerified += UInt64(bytes.count) }
    }

    func streamFinished() {
        guard !isDone else { return }
        guard sendFinished else { return end(.lost("the node finished before the operator sent everything")) }
        if service == "sink" {
            guard let (count, hash) = SinkDigest.decode(reply) else {
                return end(.wrong("the sink's digest is \(reply.count) bytes"))
            }
            guard count == UInt64(size), hash == sentDigest.hash else {
                return end(.wrong("the sink received \(count) bytes with another hash (sent \(size))"))
            }
            owner.context.stats.update { $0.bytesVerified += count }
            return end(.completed)
        }
        end(received == size ? .completed : .lost("the echo stopped after \(received) of \(size) bytes"))
    }

    func streamWritable() { pump() }

    func streamReset(_ failure: Failure) {
        guard !isDone else { return }
        let code = TunnelErrorCode.name(failure.code)
        // The operator's own session ended under the stream: the operator counts that loss.
        if owner.connection?.isEnding ?? true { return end(.endedWithReason("operator session lost")) }
        if let refusal { return end(.endedWithReason("refused \(code): \(refusal)")) }
        switch failure.code {
        case TunnelErrorCode.nodeDisconnected, TunnelErrorCode.unknownNode:
            let row = owner.board.row(node)
            end(
                row.flaps != nodeFlaps
                    ? .endedWithReason("\(code) (node flapped)") : .lost("\(code) though the node was not dropped"))
        case .refusedStream, TunnelErrorCode.nodeBusy, .enhanceYourCalm, TunnelErrorCode.auditUnavailable,
            TunnelErrorCode.denied:
            end(.endedWithReason("refused \(code)"))
        default:
            end(.lost("reset \(code): \(failure.reason)"))
        }
    }

    func checkStall(now: UInt64, timeoutNanos: UInt64) {
        guard !isDone, now &- lastProgressNanos > timeoutNanos else { return }
        owner.connection?.reset(stream, code: .cancel)
        end(
            .lost(
                "stalled: sent \(sent) of \(size), received \(received), no progress for \(timeoutNanos / 1_000_000_000) s"
            ))
    }

    private func end(_ outcome: Outcome) {
        guard !isDone else { return }
        isDone = true
        if case .wrong = outcome { owner.connection?.reset(stream, code: .cancel) }
        if case .lost = outcome { owner.connection?.reset(stream, code: .cancel) }
        owner.streamEnded(self, outcome: outcome)
    }
}
