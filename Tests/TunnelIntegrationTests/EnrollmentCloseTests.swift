import Testing
import TunnelClient
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// An enrollment connection serves one request and is then closed: the gateway keeps nothing of
/// it. (heaptrack over a 400-node fleet once counted twice the `SSL_new` and `MuxConnection`
/// objects still allocated as open sockets, which would have been one leaked connection per
/// enrolled node.)
@Suite("Enrollment connections close and leave nothing behind", .serialized)
struct EnrollmentCloseTests {
    /// Held weakly: whatever outlives its connection's close is a leak.
    final class Seen {
        weak var connection: MuxConnection?
        init(_ connection: MuxConnection) { self.connection = connection }
    }

    @Test("after five enrollments the gateway holds no connection, and each MuxConnection is freed")
    func enrollmentsLeaveNothing() throws {
        let fleet = try FleetTests.Fleet()
        defer { fleet.tearDown() }
        var seen: [Seen] = []
        for index in 1...5 {
            let name = "enrolled-\(index)"
            var outcome: Result<TLSIdentity, FleetFailure>?
            NodeCredentials.enroll(
                loop: fleet.runner.loop, host: "127.0.0.1", port: fleet.port, serverName: "localhost",
                token: fleet.token(node: name), nodeName: name, labels: [:], files: fleet.files(name),
                logger: fleet.runner.logger
            ) { outcome = $0 }
            #expect(fleet.runner.run(until: { !fleet.gateway.connections.isEmpty || outcome != nil }))
            seen += fleet.gateway.connections.values.map { Seen($0.connection) }
            #expect(fleet.runner.run(until: { outcome != nil }))
            #expect((try? outcome?.get()) != nil, "\(String(describing: outcome))")
        }
        #expect(seen.count >= 5)
        #expect(
            fleet.runner.run(until: { fleet.gateway.connections.isEmpty }), "\(fleet.gateway.connections.count) left")
        #expect(
            fleet.runner.run(until: { seen.allSatisfy { $0.connection == nil } }), "a MuxConnection outlived its close")
    }
}
