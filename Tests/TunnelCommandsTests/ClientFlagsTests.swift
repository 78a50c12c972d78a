import Testing

@testable import TunnelCommands

/// The edge agent's own flag parser (`tunnel-client`, `tunnel client`): strict, one message per mistake.
@Suite struct ClientFlagsTests {
    private func refusal(_ arguments: [String]) -> CommandFailure? {
        do {
            _ = try ClientFlags.parse(arguments, command: "tunnel-client")
            return nil
        } catch {
            return error
        }
    }

    @Test func valuesBothSpellingsAndRepeats() throws {
        let invocation = try ClientFlags.parse(
            [
                "--config", "/etc/c.yaml", "--gateway=gw:7443", "--service", "ssh=127.0.0.1:22", "--services",
                "a=127.0.0.1:1,b=127.0.0.1:2", "--token", "t", "--check-config",
            ], command: "tunnel-client")
        #expect(invocation.action == .run)
        #expect(invocation.config == "/etc/c.yaml")
        #expect(invocation.token == "t")
        #expect(invocation.checkConfig)
        #expect(invocation.flags["gateway"] == ["gw:7443"])
        #expect(invocation.flags["services"] == ["ssh=127.0.0.1:22", "a=127.0.0.1:1,b=127.0.0.1:2"])
        #expect(try ClientFlags.parse(["--gateway="], command: "c").flags["gateway"] == [""])
    }

    @Test func helpAndVersion() throws {
        #expect(try ClientFlags.parse(["-h"], command: "c").action == .help)
        #expect(try ClientFlags.parse(["--version", "--help"], command: "c").action == .help)
        #expect(try ClientFlags.parse(["--version"], command: "c").action == .version)
        let help = ClientFlags.helpText(command: "tunnel-client")
        #expect(help.hasPrefix("OVERVIEW: Run the edge agent"))
        #expect(help.contains("\n\nUSAGE: tunnel-client [<flags>]\n\nFLAGS:\n"))
        for spec in Schemas.client.settings {
            #expect(help.contains("  \(spec.flagName) <\(spec.valueName)>"), "\(spec.key)")
        }
        for line in help.split(separator: "\n") { #expect(line.count <= 80, "\(line)") }
    }

    @Test func mistakesAreRefusedWithOneMessage() {
        #expect(
            refusal(["--gatway", "x:1"])
                == .usage("unknown flag --gatway (did you mean --gateway?); see tunnel-client --help", .usage))
        #expect(refusal(["--frobnicate=1"]) == .usage("unknown flag --frobnicate; see tunnel-client --help", .usage))
        #expect(
            refusal(["gateway"])
                == .usage(
                    "unexpected argument \"gateway\": tunnel-client takes only flags (see tunnel-client --help)", .usage
                ))
        #expect(refusal(["--cert"]) == .usage("--cert needs a value: --cert <path>", .usage))
        #expect(refusal(["--check-config=yes"]) == .usage("--check-config takes no value; give it alone", .usage))
        #expect(refusal(["--key", "a", "--key", "b"]) == .usage("--key is given twice; give it once", .usage))
        #expect(refusal(["--node-label", "a=1", "--node-label", "b=2"]) == nil)
        #expect(refusal(["-x"]) == .usage("unknown flag -x; see tunnel-client --help", .usage))
    }

    @Test func wrapsAtWordBoundaries() {
        #expect(ClientFlags.wrap("aa bb cc", width: 5) == ["aa bb", "cc"])
        #expect(ClientFlags.wrap("", width: 5) == [""])
        #expect(ClientFlags.wrap("abcdefgh ij", width: 5) == ["abcdefgh", "ij"])
    }
}
