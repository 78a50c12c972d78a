import Foundation
import Testing
import TunnelOperator
import Yams

@testable import TunnelCommands

@Suite struct GeneratorTests {
    @Test func sshConfigBlockText() {
        let block = sshConfigBlock(
            tunnelPath: "/usr/local/bin/tunnel", configPath: "/home/ann/.config/tunnel/operator.yaml")
        #expect(
            block == """
                # Added by `tunnel ssh-config`: `ssh USER@NODE.tunnel` reaches NODE's sshd through the gateway.
                Host *.tunnel
                    ProxyCommand '/usr/local/bin/tunnel' proxy --config '/home/ann/.config/tunnel/operator.yaml' %h ssh
                    UserKnownHostsFile ~/.ssh/known_hosts.tunnel

                """)
        #expect(!block.contains("HostKeyAlias"))
        #expect(!block.contains("StrictHostKeyChecking"))
    }

    @Test("the block carries the operator's ssh-known-hosts and ssh-identity settings, quoted")
    func sshConfigBlockWithSettings() {
        let block = sshConfigBlock(
            tunnelPath: "/t", configPath: "/c.yaml", knownHosts: "/dev dir/known_hosts", identity: "/keys/id 25519")
        #expect(block.contains("    UserKnownHostsFile '/dev dir/known_hosts'\n"))
        #expect(block.hasSuffix("known_hosts'\n    IdentityFile '/keys/id 25519'\n"))
        #expect(!sshConfigBlock(tunnelPath: "/t", configPath: "/c.yaml").contains("IdentityFile"))
    }

    @Test func sshConfigQuotesPathsForShellAndTokens() {
        let block = sshConfigBlock(tunnelPath: "/opt/my tools/it's/tun%nel", configPath: "/c.yaml")
        #expect(block.contains("ProxyCommand '/opt/my tools/it'\\''s/tun%%nel' proxy --config '/c.yaml' %h ssh"))
    }

    /// Lets the real OpenSSH client expand the block: the ProxyCommand is a script that records
    /// its arguments, so this checks token expansion, quoting and the known_hosts setting.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh")))
    func realSSHExpandsTheBlock() throws {
        try withTemporaryDirectory { dir in
            let toolDir = "\(dir)/my tools"
            try FileManager.default.createDirectory(atPath: toolDir, withIntermediateDirectories: true)
            let fake = "\(toolDir)/tun%nel"
            try writeFile(fake, "#!/bin/sh\nprintf '%s\\n' \"$@\" > '\(dir)/args'\n")
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake)
            let config = "\(dir)/ssh_config"
            try writeFile(config, sshConfigBlock(tunnelPath: fake, configPath: "\(dir)/op.yaml"))

            let (_, resolved) = try runProgram("/usr/bin/ssh", ["-G", "-F", config, "root@Node-17.tunnel"])
            #expect(resolved.contains("\nhostname node-17.tunnel\n"))
            #expect(resolved.contains("\nstricthostkeychecking ask\n"))
            #expect(resolved.contains("userknownhostsfile ") && resolved.contains("/.ssh/known_hosts.tunnel"))
            #expect(!resolved.contains("\nhostkeyalias "))

            _ = try runProgram(
                "/usr/bin/ssh",
                ["-F", config, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "root@Node-17.tunnel", "true"])
            let args = try String(contentsOfFile: "\(dir)/args", encoding: .utf8)
            #expect(args == "proxy\n--config\n\(dir)/op.yaml\nnode-17.tunnel\nssh\n")
            #expect(nodeName(fromSSHHost: "node-17.tunnel") == "node-17")
        }
    }

    @Test func shellCommandLines() {
        #expect(shellCommandLine([]) == nil)
        #expect(shellCommandLine(["uptime; exit 3"]) == "uptime; exit 3")
        #expect(shellCommandLine(["sh", "-c", "exit 3"]) == "sh -c 'exit 3'")
        #expect(shellCommandLine(["printf", "%s\\n", "it's", ""]) == "printf '%s\\n' 'it'\\''s' ''")
        #expect(shellCommandLine(["ls", "/var/log/a_b-c.1", "x=y,z@h:p"]) == "ls /var/log/a_b-c.1 x=y,z@h:p")
    }

    @Test func nodeNames() {
        #expect(nodeName(fromSSHHost: "node-17.tunnel") == "node-17")
        #expect(nodeName(fromSSHHost: "NODE-17.TUNNEL") == "node-17")
        #expect(nodeName(fromSSHHost: "node-17.tunnel.") == "node-17")
        #expect(nodeName(fromSSHHost: "node-17") == "node-17")
        #expect(nodeName(fromSSHHost: "a.b.tunnel") == nil)
        #expect(nodeName(fromSSHHost: ".tunnel") == nil)
        #expect(nodeName(fromSSHHost: "node 17.tunnel") == nil)
    }

    static let k3sConfig = """
        apiVersion: v1
        clusters:
        - cluster:
            certificate-authority-data: LS0tLS1CRUdJTg==
            server: https://127.0.0.1:6443
          name: default
        - cluster:
            server: https://other.example:6443
          name: other
        contexts:
        - context:
            cluster: default
            user: default
          name: default
        current-context: default
        kind: Config
        preferences: {}
        users:
        - name: default
          user:
            client-certificate-data: Y2VydA==
            client-key-data: a2V5
        """

    func cluster(_ yaml: String, _ name: String) throws -> Node.Mapping? {
        let root = try Yams.compose(yaml: yaml)!.mapping!
        return root["clusters"]?.sequence?.first { $0.mapping?["name"]?.string == name }?.mapping?["cluster"]?.mapping
    }

    @Test func kubeconfigRewrite() throws {
        let out = try kubeconfigRewritten(original: Self.k3sConfig, localPort: 16443)
        let c = try #require(try cluster(out, "default"))
        #expect(c["server"]?.string == "https://127.0.0.1:16443")
        #expect(c["tls-server-name"]?.string == "127.0.0.1")
        #expect(c["certificate-authority-data"]?.string == "LS0tLS1CRUdJTg==")
        #expect(try cluster(out, "other")?["server"]?.string == "https://other.example:6443")
        #expect(try cluster(out, "other")?["tls-server-name"] == nil)
        let root = try Yams.compose(yaml: out)!.mapping!
        #expect(root["users"]?.sequence?.first?.mapping?["user"]?.mapping?["client-key-data"]?.string == "a2V5")
        #expect(root["current-context"]?.string == "default")

        let named = try kubeconfigRewritten(
            original: Self.k3sConfig.replacingOccurrences(of: "https://127.0.0.1:6443", with: "https://[fd00::5]:6443"),
            localPort: 1)
        #expect(try cluster(named, "default")?["tls-server-name"]?.string == "fd00::5")
        let given = try kubeconfigRewritten(original: Self.k3sConfig, localPort: 1, tlsServerName: "k3s.node-17")
        #expect(try cluster(given, "default")?["tls-server-name"]?.string == "k3s.node-17")
    }

    @Test func kubeconfigErrors() {
        func message(_ yaml: String) -> String? {
            do {
                _ = try kubeconfigRewritten(original: yaml, localPort: 1)
                return nil
            } catch { return error.message }
        }
        #expect(
            message(Self.k3sConfig.replacingOccurrences(of: "current-context: default\n", with: ""))
                == "the kubeconfig has no current-context; run `kubectl config use-context NAME` on the node first")
        #expect(
            message(Self.k3sConfig.replacingOccurrences(of: "current-context: default", with: "current-context: gone"))
                == "the kubeconfig has no context \"gone\" with a cluster (current-context points at nothing)")
        #expect(
            message(Self.k3sConfig.replacingOccurrences(of: "cluster: default", with: "cluster: missing"))
                == "the kubeconfig has no cluster \"missing\" (used by context \"default\")")
        #expect(message("") == "the kubeconfig is empty or not a mapping")
        #expect(message("a: [")?.hasPrefix("kubeconfig:2: not valid YAML: ") == true)
    }
}

@Suite struct CommandTests {
    /// Every schema key has a flag on its command, with the same name.
    @Test func everySettingHasAFlag() throws {
        for spec in Schemas.gateway.settings {
            let command = try GatewayCommand.parse([spec.flagName, spec.example ?? "x"])
            #expect(command.flags[spec.key] == [spec.example ?? "x"], "\(spec.key)")
        }
        for spec in Schemas.client.settings {
            let invocation = try ClientFlags.parse([spec.flagName, spec.example ?? "x"], command: "tunnel client")
            #expect(invocation.flags[spec.key] == [spec.example ?? "x"], "\(spec.key)")
        }
        for spec in Schemas.operator.settings {
            let command = try WhoamiCommand.parse([spec.flagName, spec.example ?? "x"])
            #expect(command.options.flags[spec.key] == [spec.example ?? "x"], "\(spec.key)")
        }
        let labels = try ClientFlags.parse(
            ["--node-label", "a=1", "--node-label", "b=2", "--service", "ssh=127.0.0.1:22"], command: "tunnel client")
        #expect(labels.flags["node-labels"] == ["a=1", "b=2"])
        #expect(labels.flags["services"] == ["ssh=127.0.0.1:22"])
    }

    @Test func exitCodes() {
        let failure = TunnelMain.outcome(of: CommandFailure.usage("x.yaml:1: unknown key \"a\"", .configInvalid))
        #expect(
            failure
                == TunnelMain.Outcome(
                    message: "tunnel: x.yaml:1: unknown key \"a\"\n  \(FailureCode.configInvalid.fixLine)",
                    toStandardError: true, exitCode: 2))
        #expect(TunnelMain.outcome(of: CommandFailure.failed("boom", .localFile)).exitCode == 1)
        do {
            _ = try Tunnel.parseAsRoot(["gateway", "--no-such-flag"])
            Issue.record("parsed")
        } catch {
            let outcome = TunnelMain.outcome(of: error)
            #expect(outcome.exitCode == 2)
            #expect(outcome.toStandardError)
        }
        do {
            _ = try Tunnel.parseAsRoot(["--help"])
        } catch {
            #expect(TunnelMain.outcome(of: error).exitCode == 0)
        }
    }

    /// The built executable prints `tunnel: MESSAGE` on stderr and exits 2 on a config error.
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("tunnel").path

    @Test(
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: binary), "needs the built `tunnel` next to the test bundle"
        ))
    func executableReportsFailures() throws {
        let binary = Self.binary
        try withTemporaryDirectory { dir in
            try writeFile("\(dir)/client.yaml", "gateway: gw:7443\nservice:\n  ssh: 127.0.0.1:22\n")
            let (status, output) = try runProgram(binary, ["client", "--config", "\(dir)/client.yaml"])
            #expect(status == 2)
            #expect(
                output
                    == "tunnel: \(dir)/client.yaml:2: unknown key \"service\" (did you mean \"services\"?)\n  \(FailureCode.configInvalid.fixLine)\n"
            )
        }
    }
}
