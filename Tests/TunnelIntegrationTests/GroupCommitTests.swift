import Multiplex
import Testing
import TunnelClient
import TunnelGatewayCore
import TunnelOperator
import TunnelRuntime

@testable import TunnelGateway

/// What a stream handler was told, in order.
private final class RecordingHandler: StreamHandler {
    var events: [String] = []
    func streamReceived(_ bytes: ArraySlice<UInt8>) { events.append("data \(Array(bytes))") }
    func streamFinished() { events.append("finished") }
    func streamReset(_ failure: Failure) { events.append("reset") }
    func streamWritable() { events.append("writable") }
}

/// Group commit (issue #11): a loop turn's stream-open records share one audit sync, its
/// connects and disconnects one store transaction, and no byte of a stream moves before its
/// open record is durable.
@Suite("Group commit", .serialized)
struct GroupCommitTests {
    @Test("the waits and sightings of one loop turn cost one sync and one store batch, merged in order")
    func oneSyncPerTurn() throws {
        let runner = try LoopRunner()
        defer { runner.finish() }
        var syncs = 0
        var batches: [[String: NodeSighting]] = []
        let commit = GroupCommit(
            loop: runner.loop,
            syncAudit: {
                syncs += 1
                return true
            }, saveSightings: { batches.append($0) })
        var told: [Bool] = []
        for _ in 0..<5 { commit.afterAuditSync { told.append($0) } }
        commit.nodeSeen("node-1", NodeSighting(at: 10, address: "127.0.0.1:1000"))
        commit.nodeSeen("node-1", NodeSighting(at: 11, disconnectReason: "link lost"))
        commit.nodeSeen("node-2", NodeSighting(at: 12, address: "127.0.0.1:2000"))
        #expect(told.isEmpty, "nothing is durable before the turn ends")
        #expect(runner.run(until: { told.count == 5 }))
        #expect(told == Array(repeating: true, count: 5))
        #expect(syncs == 1)
        #expect(
            batches == [
                [
                    "node-1": NodeSighting(at: 11, address: "127.0.0.1:1000", disconnectReason: "link lost"),
                    "node-2": NodeSighting(at: 12, address: "127.0.0.1:2000"),
                ]
            ])
        commit.close()
    }

    @Test("a stream's bytes, finish and acceptance wait at the gate until its record is durable, then pass in order")
    func gateHoldsUntilDurable() {
        var attached: [String] = []
        let relayEnd = RecordingHandler()
        let gate = StreamOpenGate { handler in attached.append(handler === relayEnd ? "relay" : "gate") }
        gate.hold()
        var accepted = false
        gate.streamReceived([1, 2][...])
        gate.afterOpening {
            accepted = true
            relayEnd.events.append("accepted")
        }
        gate.streamReceived([3][...])
        gate.streamFinished()
        #expect(relayEnd.events.isEmpty && !accepted, "no byte moves before the record is on disk")
        gate.open(into: relayEnd)
        #expect(relayEnd.events == ["accepted", "data [1, 2]", "data [3]", "finished"])
        #expect(attached == ["gate", "relay"], "the relay takes the stream over")
        gate.streamWritable()
        #expect(relayEnd.events.last == "writable", "once open, events pass straight through")
    }

    @Test(
        "a stream reset while its record is being synced reaches the relay once open, which is not attached to a dead stream"
    )
    func gateKeepsReset() {
        var attached = 0
        let relayEnd = RecordingHandler()
        let gate = StreamOpenGate { _ in attached += 1 }
        gate.hold()
        gate.streamReset(Failure(.cancel, "operator gave up"))
        gate.open(into: relayEnd)
        #expect(relayEnd.events == ["reset"])
        #expect(attached == 1)
    }

    @Test("eight streams opened in one turn share the audit syncs; each has its open record and echoes")
    func streamsShareSyncs() throws {
        let audited = try AuditTrailTests.Audited()
        defer { audited.tearDown() }
        let session = try audited.operatorSession("alice")
        let before = (audited.gateway.groupCommit.syncs, audited.gateway.groupCommit.recordsSynced)
        let pipes = try (0..<8).map { _ in try LocalPipe(loop: audited.runner.loop) }
        defer { for pipe in pipes { pipe.testSide.close() } }
        var results: [OperatorFailure?] = []
        for pipe in pipes {
            audited.operators.last!.splice(
                on: session, node: "node-1", service: "echo", interactive: true,
                input: pipe.tunnelSide, output: pipe.tunnelSide
            ) { results.append($0) }
        }
        for (index, pipe) in pipes.enumerated() { try pipe.testSide.write([UInt8(index)]) }
        #expect(audited.runner.run(until: { pipes.allSatisfy { $0.received.count == 1 } }))
        #expect(pipes.enumerated().allSatisfy { $0.element.received == [UInt8($0.offset)] })
        let syncs = audited.gateway.groupCommit.syncs - before.0
        let synced = audited.gateway.groupCommit.recordsSynced - before.1
        #expect(synced == 8)
        #expect(syncs < 8, "\(syncs) syncs for 8 stream opens")
        for pipe in pipes { try pipe.testSide.shutdown() }
        #expect(audited.runner.run(until: { results.count == 8 }))
        #expect(try audited.records().filter { $0["type"] == "stream_open" }.count == 8)
    }
}
