import Foundation
import Glibc
import Multiplex
import Testing
import TunnelAudit
import TunnelClient
import TunnelOperator
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// Issue #9, items 4 and 12: a shell whose recording cannot be written does not go on
/// unrecorded, and a stream's close record says why it ended with a stable reason.
@Suite("Recording that cannot be bypassed; why streams closed", .serialized)
struct RecordingCutTests {
    /// Whether this process may mount a tmpfs (root outside a locked-down container).
    static let canMountTmpfs: Bool = {
        guard getuid() == 0, let directory = try? makeTemporaryDirectory() else { return false }
        defer { rmdir(directory) }
        guard mountTmpfs(at: directory, bytes: 4096) else { return false }
        _ = umount(directory)
        return true
    }()

    static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/tunnel-tmpfs-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        return String(cString: made)
    }

    static func mountTmpfs(at directory: String, bytes: Int) -> Bool {
        mount("tmpfs", directory, "tmpfs", 0, "size=\(bytes),mode=0700") == 0
    }

    @Test(
        "a full recordings disk cuts the shell, and the close record says recording_failed", .enabled(if: canMountTmpfs)
    )
    func fullDiskCutsTheShell() throws {
        var recordings = ""
        let fixture = try GatewayFixture { configuration, pki in
            configuration.auditDirectory = "\(pki.fleet.directory)/audit"
            configuration.auditKeyDirectory = "\(pki.fleet.directory)/audit-key"
            recordings = "\(pki.fleet.directory)/audit/recordings"
            try FileManager.default.createDirectory(atPath: recordings, withIntermediateDirectories: true)
            guard Self.mountTmpfs(at: recordings, bytes: 64 * 1024) else {
                throw TestFailure("mount tmpfs failed: \(errno)")
            }
        }
        defer {
            fixture.tearDown()
            _ = umount(recordings)
        }
        // The node's "shell" is the echo service: the frames the operator sends come back as
        // frames, so both directions are recorded (keystrokes by default, then output).
        try fixture.startNode(
            try fixture.pki.identity(.node, "node-1"),
            services: ["shell": LocalService(host: "127.0.0.1", port: fixture.echo.port)])
        #expect(fixture.runner.run(until: { fixture.online("node-1") }))
        let connection = try #require(try fixture.connectOperator(fixture.pki.identity(.operator, "alice"))?.get())
        var received = 0
        var reset: Failure?
        var accepted = false
        let shell = try ShellStream.open(
            on: connection, node: "node-1", parameters: ShellParameters(term: "xterm", columns: 80, rows: 24)
        ) { event in
            switch event {
            case .accepted: accepted = true
            case .data(let bytes, let delivered):
                received += bytes.count
                delivered()
            case .reset(let failure): reset = failure
            default: break
            }
        }
        #expect(fixture.runner.run(until: { accepted || reset != nil }))
        let chunk = Array(repeating: UInt8(ascii: "x"), count: 8 * 1024)
        var sent = 0
        for _ in 0..<64 where reset == nil { // 512 KiB against a 64 KiB disk
            // A send may race the cut; the reset that follows is what the wait below ends on.
            try? shell.send(.data(chunk[...]))
            sent += chunk.count
            // The event to wait for is this chunk's echo or the cut, never a fixed timeout:
            // waiting for "anything received" with a 2 s timeout per chunk waited out up to
            // 64 timeouts whenever the echo lagged (146 s once in a loaded full run).
            #expect(
                fixture.runner.run(until: { reset != nil || received >= sent }),
                "chunk \(sent / chunk.count): no echo and no cut")
        }
        #expect(reset != nil, "512 KiB went through a 64 KiB recordings disk uncut")
        #expect(reset?.code == TunnelErrorCode.auditUnavailable, "\(String(describing: reset))")
        #expect(received < 64 * 8 * 1024)

        let records = try FileManager.default.contentsOfDirectory(atPath: "\(fixture.pki.fleet.directory)/audit").filter
        { $0.hasSuffix(".jsonl") }.flatMap {
            try String(contentsOfFile: "\(fixture.pki.fleet.directory)/audit/\($0)", encoding: .utf8).split(
                separator: "\n")
        }
        let close = try #require(records.first { $0.contains(#""type":"stream_close""#) })
        #expect(close.contains(#""reason":"recording_failed""#), "\(close)")
        #expect(close.contains("No space left on device"), "\(close)")
        #expect(close.contains(#""recording_error""#), "\(close)")
    }

    @Test("a stream whose node connection ends is closed in the audit as node_connection_lost, the text in detail")
    func nodeLostHasAStableReason() throws {
        let fixture = try GatewayFixture { configuration, pki in
            configuration.auditDirectory = "\(pki.fleet.directory)/audit"
            configuration.auditKeyDirectory = "\(pki.fleet.directory)/audit-key"
        }
        defer { fixture.tearDown() }
        try fixture.startNode(try fixture.pki.identity(.node, "node-1"))
        #expect(fixture.runner.run(until: { fixture.online("node-1") }))
        let connection = try #require(try fixture.connectOperator(fixture.pki.identity(.operator, "alice"))?.get())
        let pipe = try LocalPipe(loop: fixture.runner.loop)
        defer { pipe.testSide.close() }
        var ended: OperatorFailure??
        fixture.operators.last!.splice(
            on: connection, node: "node-1", service: "echo", interactive: true, input: pipe.tunnelSide,
            output: pipe.tunnelSide
        ) { ended = .some($0) }
        try pipe.testSide.write(Array("hello".utf8))
        #expect(fixture.runner.run(until: { pipe.received.count == 5 }))
        // The gateway ends the node's session under the stream, as a dead link would.
        _ = fixture.gateway.administer(.revokeNode(name: "node-1"), actor: "test")
        #expect(fixture.runner.run(until: { ended != nil }))

        let directory = "\(fixture.pki.fleet.directory)/audit"
        let close = try #require(
            try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".jsonl") }.flatMap {
                try String(contentsOfFile: "\(directory)/\($0)", encoding: .utf8).split(separator: "\n")
            }.first { $0.contains(#""type":"stream_close""#) })
        #expect(
            close.contains(#""outcome":"reset""#) && close.contains(#""reason":"node_connection_lost""#), "\(close)")
        #expect(close.contains(#""detail":"#) && close.contains("revoked"), "\(close)")
    }
}
