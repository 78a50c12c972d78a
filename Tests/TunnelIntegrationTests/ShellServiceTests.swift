import Glibc
import Multiplex
import Testing
import TunnelClient
import TunnelGateway
import TunnelIO
import TunnelOperator
import TunnelRuntime
import TunnelTLS

/// The node's built-in shell service through the in-process gateway: a real login shell of the
/// user running the tests on a real pseudo-terminal.
@Suite("Shell service", .serialized)
struct ShellServiceTests {
    /// The account whose login shell the tests start: the throwaway one scripts/test.sh makes
    /// (`TEST_SHELL_ACCOUNT`), so no test runs root's own profile; else whoever runs them.
    static var shellUser: String {
        if let made = getenv("TEST_SHELL_ACCOUNT") { return String(cString: made) }
        return String(cString: getpwuid(geteuid())!.pointee.pw_name)
    }

    /// A gateway, a node offering the shell service, and an operator connected to the gateway.
    /// The shared fixture with a node offering only the shell, and one operator connected.
    final class Scenario: GatewayFixture {
        let shellService: ShellService
        /// The operator's connection, once `init` connected it.
        private(set) var connection: MuxConnection!

        init() throws {
            shellService = try ShellService(user: ShellServiceTests.shellUser)
            try super.init()
            try startNode(pki.identity(.node, "node-17"), builtIn: [ShellStream.serviceName: shellService])
            #expect(
                runner.run(until: {
                    self.gateway.nodeStatuses().contains { $0.name == "node-17" && $0.services == ["shell"] }
                }))
            connection = try #require(try connectOperator(pki.identity(.operator, "alice"))?.get())
        }

        var operatorClient: OperatorClient { operators[0] }
    }

    /// The operator's end of one shell, recording what arrives.
    final class Terminal {
        private(set) var shell: ShellStream!
        private(set) var output: [UInt8] = []
        private(set) var accepted = false
        private(set) var exitStatus: Int32?
        private(set) var finished = false
        private(set) var failure: Failure?

        init(_ scenario: Scenario, parameters: ShellParameters) throws {
            shell = try ShellStream.open(on: scenario.connection, node: "node-17", parameters: parameters) {
                [unowned self] event in
                switch event {
                case .accepted: accepted = true
                case .data(let bytes, let delivered):
                    output.append(contentsOf: bytes)
                    delivered()
                case .exit(let status): exitStatus = status
                case .finished: finished = true
                case .reset(let failure): self.failure = failure
                case .resize, .writable: break
                }
            }
        }

        var text: String { String(decoding: output, as: UTF8.self) }

        func type(_ keys: String) throws {
            try shell.send(.data(Array(keys.utf8)[...]))
        }
    }

    @Test("the shell gets the operator's TERM and size, follows a resize, and its exit status comes back")
    func sizeTermResizeExit() throws {
        let scenario = try Scenario()
        defer { scenario.tearDown() }
        let terminal = try Terminal(scenario, parameters: ShellParameters(term: "vt220", columns: 100, rows: 30))
        #expect(scenario.runner.run(until: { terminal.accepted || terminal.failure != nil }))
        try #require(terminal.failure == nil, "\(terminal.failure!)")

        // The echoed command line contains neither "30 100" nor "T=vt220": only the shell's answers do.
        try terminal.type("stty size; echo \"T=$TERM\"\n")
        #expect(
            scenario.runner.run(until: { terminal.text.contains("30 100") && terminal.text.contains("T=vt220") }),
            "\(terminal.text)")

        try terminal.shell.send(.resize(columns: 120, rows: 40))
        try terminal.type("stty size\n")
        #expect(scenario.runner.run(until: { terminal.text.contains("40 120") }), "\(terminal.text)")

        try terminal.type("exit 7\n")
        #expect(scenario.runner.run(until: { terminal.finished }))
        #expect(terminal.exitStatus == 7)
        terminal.shell.finish()
        #expect(scenario.runner.run(until: { scenario.shellService.sessionCount == 0 }))
    }

    @Test("scripted input: the end of input is a Ctrl-D, after which the shell's own exit status comes back")
    func scriptedInput() throws {
        let scenario = try Scenario()
        defer { scenario.tearDown() }
        let terminal = try Terminal(scenario, parameters: ShellParameters(term: "dumb", columns: 80, rows: 24))
        try terminal.type("echo hi; exit 3\n\u{4}")
        #expect(scenario.runner.run(until: { terminal.finished || terminal.failure != nil }))
        #expect(terminal.exitStatus == 3)
        #expect(terminal.text.contains("\nhi\r\n"), "\(terminal.text)")
        terminal.shell.finish()
        #expect(scenario.runner.run(until: { scenario.shellService.sessionCount == 0 }))
    }

    @Test(
        "a command runs through the login shell's -c on the terminal, and its exit status comes back without any input")
    func command() throws {
        let scenario = try Scenario()
        defer { scenario.tearDown() }
        let terminal = try Terminal(
            scenario,
            parameters: ShellParameters(
                term: "dumb", columns: 80, rows: 24, command: "tty >/dev/null && echo out-$((6 * 7)); exit 5"))
        #expect(scenario.runner.run(until: { terminal.finished || terminal.failure != nil }))
        #expect(terminal.exitStatus == 5)
        // The command is not echoed (nobody typed it): "out-42" can only be its output, on a terminal.
        #expect(terminal.text.contains("out-42"), "\(terminal.text)")
        terminal.shell.finish()
        #expect(scenario.runner.run(until: { scenario.shellService.sessionCount == 0 }))
    }

    @Test("an operator who goes away hangs the shell up: it ends well before the SIGKILL grace period")
    func operatorResetHangsUp() throws {
        let scenario = try Scenario()
        defer { scenario.tearDown() }
        let terminal = try Terminal(scenario, parameters: ShellParameters(term: "dumb", columns: 80, rows: 24))
        try terminal.type("echo started $$; sleep 1000\n")
        #expect(scenario.runner.run(until: { terminal.text.contains("\nstarted ") }), "\(terminal.text)")
        let session = try #require(Self.shellPid(in: terminal.text))
        #expect(scenario.shellService.sessionCount == 1)
        terminal.shell.reset(code: .cancel)
        #expect(scenario.runner.run(until: { scenario.shellService.sessionCount == 0 }, timeout: .seconds(3)))
        // The foreground `sleep`, in a process group of its own, is hung up too.
        #expect(
            scenario.runner.run(until: { SessionProcesses.groups(inSession: session).isEmpty }, timeout: .seconds(3)))
    }

    /// The shell's pid, which `echo started $$` printed: the id of its session.
    private static func shellPid(in output: String) -> pid_t? {
        guard let line = output.split(separator: "\r\n").first(where: { $0.hasPrefix("started ") }) else { return nil }
        return pid_t(line.dropFirst("started ".count))
    }

    @Test("bad parameters and unknown users are refused with a sentence")
    func refusals() throws {
        let scenario = try Scenario()
        defer { scenario.tearDown() }
        let terminal = try Terminal(scenario, parameters: ShellParameters(term: "vt220", columns: 0, rows: 24))
        #expect(scenario.runner.run(until: { terminal.failure != nil }))
        #expect(terminal.shell.refusal?.message == "shell parameter cols must be a number from 1 to 65535")
        #expect(terminal.failure?.code == TunnelErrorCode.badRequest)

        #expect(throws: Failure.self) { try ShellService(user: "no-such-user-here") }
        do {
            _ = try ShellService(user: "no-such-user-here")
        } catch {
            #expect(error.reason.contains("no user no-such-user-here"))
        }
    }
}
