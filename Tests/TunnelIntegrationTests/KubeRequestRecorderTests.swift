import Testing
import TunnelAudit
import TunnelRuntime

@testable import TunnelGateway

/// The gateway's recorder of a kubernetes stream, fed relayed bytes as the relay's tap feeds it.
@Suite struct KubeRequestRecorderTests {
    final class Sink {
        var records: [[String: AuditValue]] = []
        var now: UInt64 = 1_000
    }

    func recorder(_ sink: Sink) -> KubeRequestRecorder {
        KubeRequestRecorder(
            parties: StreamParties(
                stream: "s/1", session: "s", operatorName: "alice", node: "edge-1", service: "kubernetes"),
            identity: KubernetesIdentity(user: "alice", groups: ["edge-operators"]),
            now: { sink.now },
            write: { event in
                #expect(event.type == "kube_request")
                sink.records.append(event.fields)
            })
    }

    func bytes(_ text: String) -> ArraySlice<UInt8> { Array(text.utf8)[...] }

    @Test func oneRecordPerRequestWhenItsResponseBegins() {
        let sink = Sink()
        let kube = recorder(sink)
        #expect(
            kube.feed(
                bytes(
                    "GET /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: k\r\n\r\nDELETE /api/v1/namespaces/default/pods/demo HTTP/1.1\r\nHost: k\r\n\r\n"
                ), direction: .fromFirst) == nil)
        #expect(sink.records.isEmpty)
        #expect(
            kube.feed(
                bytes(
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
                direction: .fromSecond) == nil)
        #expect(sink.records.count == 2)
        #expect(sink.records[0]["verb"] == .string("list") && sink.records[0]["code"] == .int(200))
        #expect(
            sink.records[1]["verb"] == .string("delete") && sink.records[1]["name"] == .string("demo")
                && sink.records[1]["code"] == .int(403))
        #expect(sink.records.allSatisfy { $0["kube_user"] == .string("alice") && $0["stream"] == .string("s/1") })
        #expect(kube.recorded == 2)
    }

    @Test func anUnansweredRequestIsRecordedAtTheEndWithoutACode() {
        let sink = Sink()
        let kube = recorder(sink)
        _ = kube.feed(bytes("GET /version HTTP/1.1\r\nHost: k\r\n\r\n"), direction: .fromFirst)
        kube.finish()
        #expect(sink.records.count == 1)
        #expect(sink.records[0]["verb"] == .string("get") && sink.records[0]["path"] == .string("/version"))
        #expect((sink.records[0]["code"] ?? nil) == nil)
    }

    @Test func unparseableOrFloodingStreamsAreToBeCut() {
        let sink = Sink()
        #expect(recorder(sink).feed(bytes("NOT HTTP AT ALL\r\n\r\n"), direction: .fromFirst) != nil)
        let flood = recorder(sink)
        var reason: String?
        for _ in 0..<200 where reason == nil {
            reason =
                flood.feed(bytes("GET /api HTTP/1.1\r\nHost: k\r\n\r\n"), direction: .fromFirst)
                ?? flood.feed(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), direction: .fromSecond)
        }
        #expect(reason?.contains("requests per second") == true)
    }
}
