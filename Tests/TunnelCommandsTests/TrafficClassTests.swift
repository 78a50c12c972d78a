import ArgumentParser
import Testing

@testable import TunnelCommands

/// Issue #12: the scheduling class is chosen by use, not by the service's name.
@Suite struct TrafficClassTests {
    @Test("a proxy under an ssh that reads a terminal is interactive; under scp, rsync or sftp (a pipe) it is bulk")
    func proxyByCaller() {
        #expect(TrafficClass.forProxy(callerInput: "/dev/pts/3") == .interactive)
        #expect(TrafficClass.forProxy(callerInput: "/dev/tty1") == .interactive)
        #expect(TrafficClass.forProxy(callerInput: "pipe:[48213]") == .bulk)
        #expect(TrafficClass.forProxy(callerInput: "socket:[48213]") == .bulk)
        #expect(TrafficClass.forProxy(callerInput: "/dev/null") == .bulk)
        #expect(TrafficClass.forProxy(callerInput: nil) == .bulk)
    }

    @Test("--class overrides the class picked by use; a wrong value names the choices")
    func flagOverrides() throws {
        let proxy = try ProxyCommand.parse(["--class", "interactive", "node-17", "ssh"])
        #expect(proxy.traffic.resolved(byUse: .bulk) == .interactive)
        let shell = try ShellCommand.parse(["--class", "bulk", "node-17"])
        #expect(shell.traffic.resolved(byUse: .interactive) == .bulk)
        #expect(try ForwardCommand.parse(["node-17", "web"]).traffic.resolved(byUse: .bulk) == .bulk)
        #expect(throws: (any Error).self) { try ProxyCommand.parse(["--class", "fast", "node-17", "ssh"]) }
    }

    @Test("tunnel ssh hands a chosen class to its ProxyCommand, and none when nothing was chosen")
    func sshPassesTheClass() {
        let settings = OperatorSettings(
            gateway: HostPort(host: "localhost", port: 7443), serverName: "localhost", cert: "/c.crt",
            key: "/c.key", gatewayCA: "/ca.crt", logLevel: .warning)
        let chosen = sshInvocation(
            tunnelPath: "/usr/bin/tunnel", configPath: "/c.yaml", settings: settings, user: nil,
            node: "node-17", trafficClass: .bulk, extra: [])
        #expect(chosen.contains { $0.hasPrefix("ProxyCommand=") && $0.contains(" --class bulk %h ssh") })
        let byUse = sshInvocation(
            tunnelPath: "/usr/bin/tunnel", configPath: "/c.yaml", settings: settings, user: nil,
            node: "node-17", extra: [])
        #expect(byUse.allSatisfy { !$0.contains("--class") })
    }
}
