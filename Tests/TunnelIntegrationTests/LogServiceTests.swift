import Foundation
import Glibc
import Multiplex
import Testing
import TunnelGateway
import TunnelIO
import TunnelOperator
import TunnelRuntime
import TunnelTLS

@testable import TunnelClient

/// Device logs through an in-process gateway over real TLS: a node whose client serves log
/// sources from a temporary log root, and an operator reading them as `tunnel logs` does.
@Suite("Device logs", .serialized)
struct LogServiceTests {
    /// The shared fixture with a node whose only service is `logs` over files in `root`.
    final class Setup: GatewayFixture {
        var root: String { "\(pki.fleet.directory)/log" }
        var outside: String { "\(pki.fleet.directory)/outside" }
        private(set) var service: LogService!

        /// `sources` maps names to paths relative to the log root, or to `journald:UNIT`.
        init(_ sources: [String: String]) throws {
            try super.init()
            for directory in [root, outside] {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            let root = self.root
            service = LogService(
                sources: try sources.mapValues {
                    try LogSource.parse($0.hasPrefix("journald:") ? $0 : "\(root)/\($0)")
                }, root: root)
            try startNode(pki.identity(.node, "node-17"), builtIn: [LogService.serviceName: service])
            #expect(
                runner.run(until: {
                    self.gateway.nodeStatuses().contains {
                        $0.name == "node-17" && $0.online && $0.services == ["logs"]
                    }
                }))
        }

        /// Starts a read as `tunnel logs` does: the operator's direction ends at once.
        func read(_ request: LogRequest) throws -> LogRead {
            let connection = try #require(try connectOperator(pki.identity(.operator, "alice"))?.get())
            let read = LogRead(client: operators.last!, pipe: try LocalPipe(loop: runner.loop))
            operators.last!.splice(
                on: connection, node: "node-17", service: LogService.serviceName,
                parameters: request.parameters, interactive: false,
                input: read.pipe.tunnelSide, output: read.pipe.tunnelSide
            ) { read.outcome = .some($0) }
            try read.pipe.testSide.shutdown()
            return read
        }

        /// Reads to the end; the lines, or the operator's failure message.
        func lines(_ request: LogRequest) throws -> Result<[String], OperatorFailure> {
            let read = try self.read(request)
            runner.run(until: { read.outcome != nil })
            read.close()
            switch read.outcome {
            case .some(nil): return .success(read.lines)
            case .some(let failure?): return .failure(failure)
            case nil: return .failure(OperatorFailure("no answer", cause: .ended))
            }
        }

        func path(_ name: String) -> String { "\(root)/\(name)" }
    }

    /// What an operator received on one logs stream.
    final class LogRead {
        let client: OperatorClient
        let pipe: LocalPipe
        /// Set once: nil when the node finished the stream, else why it ended.
        var outcome: OperatorFailure??

        init(client: OperatorClient, pipe: LocalPipe) {
            self.client = client
            self.pipe = pipe
        }

        /// Complete lines received so far.
        var lines: [String] {
            let text = String(decoding: pipe.received, as: UTF8.self)
            return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        }

        /// The operator goes away, as Ctrl-C on `tunnel logs -f` does.
        func close() {
            client.close()
            pipe.testSide.close()
        }
    }

    /// Appends text to a file, creating it.
    static func append(_ text: String, to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard descriptor >= 0 else { throw TestFailure("cannot open \(path)") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count else { throw TestFailure("short write to \(path)") }
    }

    /// Whether this process holds `path` open: the node's reader still follows it.
    static func isOpenHere(_ path: String) -> Bool {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return descriptors.contains {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == path
        }
    }

    static func numbered(_ range: ClosedRange<Int>) -> String {
        range.map { "line \($0)\n" }.joined()
    }

    @Test("the last N lines, a partial last line included; -n 0 sends nothing; grep keeps matching lines")
    func lastLines() throws {
        let setup = try Setup(["app": "app.log"])
        defer { setup.tearDown() }
        // 2.5 MB: many backwards reads to find the start, many turns of reading and waiting for
        // the stream to drain to send it all. The last line is unfinished.
        try Self.append(Self.numbered(1...200_000) + "unfinished", to: setup.path("app.log"))
        #expect(
            try setup.lines(LogRequest(source: "app", lines: 3)).get() == ["line 199999", "line 200000", "unfinished"])
        #expect(try setup.lines(LogRequest(lines: 0)).get() == [])
        #expect(
            try setup.lines(LogRequest(lines: 200_000)).get() == (2...200_000).map { "line \($0)" } + ["unfinished"])
        // Of the last 100 lines (199902 to "unfinished"), those containing "95".
        let matching = try setup.lines(LogRequest(lines: 100, grep: "95")).get()
        #expect(matching == (199950...199959).map { "line \($0)" } + ["line 199995"])
    }

    @Test("-f follows a file across a rename rotation: every line once, in order, a half-written line whole")
    func followAcrossRename() throws {
        let setup = try Setup(["app": "app.log"])
        defer { setup.tearDown() }
        let path = setup.path("app.log")
        try Self.append(Self.numbered(1...3), to: path)
        let read = try setup.read(LogRequest(source: "app", lines: 2, follow: true))
        #expect(setup.runner.run(until: { read.lines.count == 2 }))
        try Self.append("line 4\nline 5 is half", to: path)
        #expect(setup.runner.run(until: { read.lines.count == 3 }))
        try Self.append(" written\n", to: path)
        // logrotate's default: rename, create a new file; the writer still writes a line to the
        // old file before it reopens the path.
        #expect(rename(path, "\(path).1") == 0)
        try Self.append("line 6\n", to: "\(path).1")
        try Self.append(Self.numbered(7...9), to: path)
        #expect(setup.runner.run(until: { read.lines.count >= 8 }))
        setup.runner.run(until: { false }, timeout: .milliseconds(600))
        #expect(
            read.lines == [
                "line 2", "line 3", "line 4", "line 5 is half written", "line 6", "line 7", "line 8", "line 9",
            ])
        #expect(read.outcome == nil)

        // The operator goes away: the node stops following and lets go of the file.
        #expect(Self.isOpenHere(path))
        read.close()
        #expect(setup.runner.run(until: { !Self.isOpenHere(path) }))
    }

    @Test("-f follows a file truncated in place (copytruncate) from its new start")
    func followAcrossCopyTruncate() throws {
        let setup = try Setup(["app": "app.log"])
        defer { setup.tearDown() }
        let path = setup.path("app.log")
        try Self.append("a long first line before the rotation\na long second line before the rotation\n", to: path)
        let read = try setup.read(LogRequest(lines: 10, follow: true))
        #expect(setup.runner.run(until: { read.lines.count == 2 }))
        #expect(truncate(path, 0) == 0)
        try Self.append("after 1\nafter 2\n", to: path)
        #expect(setup.runner.run(until: { read.lines.count >= 4 }))
        #expect(read.lines.suffix(2) == ["after 1", "after 2"])
        read.close()
    }

    @Test("a glob serves each file with its name, picks up new files, and skips a symlink out of the root")
    func globSource() throws {
        let setup = try Setup(["apps": "apps/*.log"])
        defer { setup.tearDown() }
        try FileManager.default.createDirectory(atPath: setup.path("apps"), withIntermediateDirectories: true)
        try Self.append("a1\n", to: setup.path("apps/a.log"))
        try Self.append("secret\n", to: "\(setup.outside)/secret.log")
        try FileManager.default.createSymbolicLink(
            atPath: setup.path("apps/leak.log"), withDestinationPath: "\(setup.outside)/secret.log")
        #expect(try setup.lines(LogRequest()).get() == ["a.log: a1"])
        let read = try setup.read(LogRequest(follow: true))
        #expect(setup.runner.run(until: { read.lines.count == 1 }))
        try Self.append("b1\n", to: setup.path("apps/b.log"))
        try Self.append("a2\n", to: setup.path("apps/a.log"))
        #expect(setup.runner.run(until: { read.lines.count == 3 }))
        #expect(Set(read.lines) == ["a.log: a1", "a.log: a2", "b.log: b1"])
        read.close()
    }

    @Test(
        "refusals are sentences: an unknown source names the configured ones; a symlink out of the root, a bad request")
    func refusals() throws {
        let setup = try Setup(["app": "app.log", "leak": "leak.log", "none": "none/*.log", "k3s": "journald:k3s"])
        defer { setup.tearDown() }
        try Self.append("x\n", to: setup.path("app.log"))
        try Self.append("secret\n", to: "\(setup.outside)/secret.log")
        try FileManager.default.createSymbolicLink(
            atPath: setup.path("leak.log"), withDestinationPath: "\(setup.outside)/secret.log")
        func message(_ request: LogRequest) throws -> String {
            guard case .failure(let failure) = try setup.lines(request) else { return "served" }
            return failure.message
        }
        #expect(
            try message(LogRequest(source: "nope"))
                == "this node has no log source \"nope\"; it has: app, k3s, leak, none")
        #expect(try message(LogRequest()) == "name a log source; this node has: app, k3s, leak, none")
        #expect(try message(LogRequest(source: "leak")).contains("leads outside the log root"))
        #expect(try message(LogRequest(source: "none")) == "\(setup.root)/none/*.log matches no file on this node")
        #expect(try message(LogRequest(source: "app", lines: -1)).contains("lines: -1 is not between"))
        #expect(try setup.lines(LogRequest(source: "app")).get() == ["x"])
    }

    @Test("journald sources run journalctl with the unit, line count, since and follow; following ends it")
    func journald() throws {
        let setup = try Setup(["k3s": "journald:k3s"])
        defer { setup.tearDown() }
        // No journald runs in the test container: a stand-in journalctl prints its arguments
        // and two entries, records its pid first (so the follow run's pid is there once its lines
        // are), and with --follow waits (as itself, via exec) to be ended.
        let script = "\(setup.root)/../journalctl"
        try installExecutable(
            """
            #!/bin/sh
            echo $$ > "$0.pid"
            echo "args: $*"
            echo "entry one"
            echo "entry two" >&2
            case "$*" in *--follow*) exec sleep 60;; esac
            """, at: script)
        setup.service.journalctl = script

        let lines = try setup.lines(LogRequest(lines: 5, sinceSeconds: 3600, grep: "e")).get()
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("args: --unit=k3s --lines=5 --no-pager --output=short-iso --since=@"))
        #expect(lines[1...] == ["entry one", "entry two"])

        let read = try setup.read(LogRequest(follow: true, grep: "entry"))
        #expect(setup.runner.run(until: { read.lines == ["entry one", "entry two"] }))
        let pid = try #require(
            Int32(
                String(contentsOfFile: "\(script).pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            ))
        #expect(kill(pid, 0) == 0)
        read.close()
        #expect(setup.runner.run(until: { kill(pid, 0) != 0 }), "journalctl still runs")

        setup.service.journalctl = "\(setup.root)/no-such-journalctl"
        guard case .failure(let failure) = try setup.lines(LogRequest()) else {
            Issue.record("served without journalctl")
            return
        }
        #expect(failure.message.contains("cannot read the journal of k3s"))
    }

    @Test("lines are cut at the length cap, a filter finds text anywhere in a line, a held line is flushed")
    func lineFraming() {
        var framer = LineFramer(prefix: Array("f: ".utf8))
        var output: [UInt8] = []
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: LineFramer.maxLineLength + 10)
        (long + Array("\nab".utf8)).withUnsafeBytes { framer.feed($0, filter: LineFilter(nil), into: &output) }
        framer.flush(filter: LineFilter(nil), into: &output)
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines.map(\.count) == [LineFramer.maxLineLength + 3, 13, 5])
        #expect(lines[2] == "f: ab")
        let filter = LineFilter("needle")
        for (line, expected) in [
            ("needle", true), ("a needle here", true), ("needl", false), ("nneedle", true), ("", false),
        ] {
            #expect(Array(line.utf8).withUnsafeBytes { filter.matches($0) } == expected, "\(line)")
        }
    }
}

/// Writes an executable as another process (`install`), never through a descriptor of this one:
/// a child another test forks while this process holds the file open for writing keeps that
/// descriptor until its exec, and executing the file meanwhile fails with ETXTBSY.
private func installExecutable(_ text: String, at path: String) throws {
    let source = "\(path).source"
    try text.write(toFile: source, atomically: true, encoding: .utf8)
    let install = Process()
    install.executableURL = URL(fileURLWithPath: "/usr/bin/install")
    install.arguments = ["-m", "755", source, path]
    try install.run()
    install.waitUntilExit()
    #expect(install.terminationStatus == 0, "install \(path)")
}
