import Foundation
import Testing

@testable import TunnelCommands

@Suite struct SettingsTests {
    /// An environment with no config file at the default path and no XDG surprises.
    func env(_ extra: [String: String] = [:], home: String = "/nonexistent-home") -> [String: String] {
        ["HOME": home, "PATH": "/usr/bin"].merging(extra) { _, new in new }
    }

    @Test func defaultsOnly() throws {
        let s = try SettingsLoader.load(Schemas.gateway, SettingsInput(environment: env()))
        let g = try GatewaySettings(s)
        #expect(g.listen == HostPort(host: "0.0.0.0", port: 7443))
        #expect(g.dataDir == "/var/lib/tunnel/gateway")
        #expect(g.pkiDir == "/var/lib/tunnel/gateway/pki")
        #expect(g.drainTimeout == .seconds(30))
        #expect(g.handshakeTimeout == .seconds(10))
        #expect(g.keepaliveInterval == .seconds(20))
        #expect(g.logLevel == .info)
        #expect(!g.sessionResumption, "no session tickets unless asked for (DESIGN's TLS default)")
        #expect(s.sources["listen"] == .defaultValue)
        #expect(s.sources["pki-dir"] == .derived(from: "data-dir"))
    }

    @Test("handshakes run on the loop unless handshake-threads asks for worker threads")
    func handshakeThreads() throws {
        let plain = try SettingsLoader.load(Schemas.gateway, SettingsInput(environment: env([:])))
        #expect(try GatewaySettings(plain).handshakeThreads == 0)
        let two = try SettingsLoader.load(
            Schemas.gateway, SettingsInput(environment: env(["TUNNEL_HANDSHAKE_THREADS": "2"])))
        #expect(try GatewaySettings(two).handshakeThreads == 2)
        #expect(throws: (any Error).self) {
            try SettingsLoader.load(
                Schemas.gateway, SettingsInput(environment: env(["TUNNEL_HANDSHAKE_THREADS": "two"])))
        }
    }

    @Test("session resumption is turned on by its key, and anything but a yes or no is refused")
    func sessionResumptionIsOptIn() throws {
        let on = try SettingsLoader.load(
            Schemas.gateway, SettingsInput(environment: env(["TUNNEL_SESSION_RESUMPTION": "on"])))
        #expect(try GatewaySettings(on).sessionResumption)
        #expect(throws: (any Error).self) {
            try SettingsLoader.load(
                Schemas.gateway, SettingsInput(environment: env(["TUNNEL_SESSION_RESUMPTION": "maybe"])))
        }
    }

    @Test("every field of the typed settings is filled by its declaration: none keeps its placeholder")
    func everyFieldIsDeclared() throws {
        let gateway = try GatewaySettings(SettingsLoader.load(Schemas.gateway, SettingsInput(environment: env())))
        #expect(
            gateway
                == GatewaySettings(
                    listen: HostPort(host: "0.0.0.0", port: 7443), dataDir: "/var/lib/tunnel/gateway",
                    pkiDir: "/var/lib/tunnel/gateway/pki",
                    adminSocket: "/var/lib/tunnel/gateway/admin.sock", nodeCertificateTTL: .seconds(86_400),
                    reenrollWindow: .seconds(30 * 86_400),
                    drainTimeout: .seconds(30), handshakeTimeout: .seconds(10), keepaliveInterval: .seconds(20),
                    logLevel: .info))
        let client = try ClientSettings(
            SettingsLoader.load(
                Schemas.client,
                SettingsInput(environment: env(["TUNNEL_GATEWAY": "gw:7443", "TUNNEL_LOG_LEVEL": "debug"]))))
        #expect(
            client
                == ClientSettings(
                    gateway: HostPort(host: "gw", port: 7443), serverName: "gw",
                    cert: "/var/lib/tunnel/client/node.crt", key: "/var/lib/tunnel/client/node.key",
                    gatewayCA: "/var/lib/tunnel/client/gateway-ca.crt", services: [:], nodeLabels: [:],
                    keepaliveInterval: .seconds(30), logLevel: .debug))
        let operatorSettings = try OperatorSettings(
            SettingsLoader.load(
                Schemas.operator, SettingsInput(environment: env(["TUNNEL_GATEWAY": "gw:7443"], home: "/h"))))
        #expect(
            operatorSettings
                == OperatorSettings(
                    gateway: HostPort(host: "gw", port: 7443), serverName: "gw", cert: "/h/.config/tunnel/operator.crt",
                    key: "/h/.config/tunnel/operator.key",
                    gatewayCA: "/h/.config/tunnel/gateway-ca.crt", sshKnownHosts: "/h/.ssh/known_hosts.tunnel",
                    logLevel: .info))
        #expect(Schemas.gateway.keys == GatewaySettings.declarations.map(\.spec.key))
    }

    @Test func precedenceDefaultFileEnvironmentFlag() throws {
        try withTemporaryDirectory { dir in
            let config = "\(dir)/gateway.yaml"
            try writeFile(
                config,
                """
                # comment
                listen: 10.0.0.1:1000
                drain-timeout: 1m
                handshake-timeout: 5s
                data-dir: state
                """)
            let input = SettingsInput(
                configPath: config,
                environment: env(["TUNNEL_DRAIN_TIMEOUT": "2m", "TUNNEL_LISTEN": "10.0.0.2:2000"]),
                flags: ["listen": ["[::1]:3000"]])
            let s = try SettingsLoader.load(Schemas.gateway, input)
            let g = try GatewaySettings(s)
            #expect(g.listen == HostPort(host: "::1", port: 3000)) // flag beats env and file
            #expect(s.sources["listen"] == .flag("--listen"))
            #expect(g.drainTimeout == .seconds(120)) // env beats file
            #expect(s.sources["drain-timeout"] == .environment("TUNNEL_DRAIN_TIMEOUT"))
            #expect(g.handshakeTimeout == .seconds(5)) // file beats default
            #expect(s.sources["handshake-timeout"] == .file(path: config, line: 4))
            #expect(g.keepaliveInterval == .seconds(20)) // default
            #expect(g.dataDir == "\(dir)/state") // relative to the file
            #expect(g.pkiDir == "\(dir)/state/pki") // derived after all sources
            #expect(s.configFile == config)
        }
    }

    @Test func clientMapsAndDerivedServerName() throws {
        try withTemporaryDirectory { dir in
            let config = "\(dir)/client.yaml"
            try writeFile(
                config,
                """
                gateway: gw.example.com:7443
                services:
                  ssh: 127.0.0.1:22
                  k3s: "[::1]:6443"
                node-labels:
                  site: berlin
                  example.com/rack: "7"
                """)
            let s = try SettingsLoader.load(Schemas.client, SettingsInput(configPath: config, environment: env()))
            let c = try ClientSettings(s)
            #expect(c.serverName == "gw.example.com")
            #expect(
                c.services == ["ssh": HostPort(host: "127.0.0.1", port: 22), "k3s": HostPort(host: "::1", port: 6443)])
            #expect(c.nodeLabels == ["site": "berlin", "example.com/rack": "7"])
            #expect(c.cert == "/var/lib/tunnel/client/node.crt")

            // Flags replace a map as a whole (as k3s does), merging all flag occurrences.
            let f = try SettingsLoader.load(
                Schemas.client,
                SettingsInput(
                    configPath: config, environment: env(["TUNNEL_SERVER_NAME": "gw.internal"]),
                    flags: ["node-labels": ["a=1,b=2", "c=3"]]))
            #expect(try ClientSettings(f).nodeLabels == ["a": "1", "b": "2", "c": "3"])
            #expect(try ClientSettings(f).serverName == "gw.internal")
            // Environment maps are k=v,k2=v2.
            let e = try SettingsLoader.load(
                Schemas.client,
                SettingsInput(
                    configPath: config, environment: env(["TUNNEL_SERVICES": "ssh=10.0.0.5:22,web=host.local:80"])))
            #expect(
                try ClientSettings(e).services == [
                    "ssh": HostPort(host: "10.0.0.5", port: 22), "web": HostPort(host: "host.local", port: 80),
                ])
        }
    }

    @Test func defaultConfigFileIsReadWhenPresentAndXDGIsHonoured() throws {
        try withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/xdg/tunnel", withIntermediateDirectories: true)
            try writeFile("\(dir)/xdg/tunnel/operator.yaml", "gateway: gw:7443\n")
            let s = try SettingsLoader.load(
                Schemas.operator, SettingsInput(environment: env(["XDG_CONFIG_HOME": "\(dir)/xdg"], home: dir)))
            let o = try OperatorSettings(s)
            #expect(s.configFile == "\(dir)/xdg/tunnel/operator.yaml")
            #expect(o.gateway == HostPort(host: "gw", port: 7443))
            #expect(o.cert == "\(dir)/xdg/tunnel/operator.crt")
            // Without XDG_CONFIG_HOME the defaults live under HOME/.config, and that file does not exist.
            let t = try? SettingsLoader.load(Schemas.operator, SettingsInput(environment: env([:], home: dir)))
            #expect(t == nil)
        }
    }

    @Test func unknownKeyInFileWithSuggestionAndLine() throws {
        try withTemporaryDirectory { dir in
            let config = "\(dir)/client.yaml"
            try writeFile(config, "# edge box 17\ngateway: gw:7443\n\n\n\n\nservice:\n  ssh: 127.0.0.1:22\n")
            let f = failure {
                try SettingsLoader.load(Schemas.client, SettingsInput(configPath: config, environment: env()))
            }
            #expect(f?.message == "\(config):7: unknown key \"service\" (did you mean \"services\"?)")
            #expect(f?.exitCode == 2)
            try writeFile(config, "zzzz: 1\n")
            let g = failure {
                try SettingsLoader.load(Schemas.gateway, SettingsInput(configPath: config, environment: env()))
            }
            #expect(g?.message.hasPrefix("\(config):1: unknown key \"zzzz\" (known keys: listen, data-dir,") == true)
        }
    }

    @Test func fileValueErrors() throws {
        try withTemporaryDirectory { dir in
            let config = "\(dir)/gateway.yaml"
            func message(_ text: String) -> String? {
                try! writeFile(config, text)
                return failure {
                    try SettingsLoader.load(Schemas.gateway, SettingsInput(configPath: config, environment: env()))
                }?.message
            }
            #expect(message("listen: 7443\n") == "\(config):1: listen: \"7443\" is not HOST:PORT (e.g. 0.0.0.0:7443)")
            #expect(
                message("drain-timeout: 30\n")
                    == "\(config):1: drain-timeout: \"30\" is not a duration: the unit is missing; use a number and a unit: ms, s, m, h or d (e.g. 30s, 15m, 24h)"
            )
            #expect(
                message("listen: 0.0.0.0:1\nlisten: 0.0.0.0:2\n")
                    == "\(config):2: \"listen\" is set twice (first at line 1); keep one")
            #expect(message("listen:\n") == "\(config):1: \"listen\" has no value; give one or remove the line")
            #expect(message("- a\n- b\n") == "\(config):1: expected KEY: VALUE lines at the top level, not a list")
            #expect(
                message("listen: [a, b]\n")
                    == "\(config):1: listen: expected a single value, not a list (e.g. listen: 0.0.0.0:7443)")
            #expect(message("listen: \"unterminated\n")?.hasPrefix("\(config):") == true)
            #expect(message("listen: \"unterminated\n")?.contains("\n") == false)
            #expect(
                message("log-level: verbose\n")
                    == "\(config):1: log-level: \"verbose\" is not valid (use one of: trace, debug, info, notice, warning, error, critical)"
            )
        }
    }

    @Test func environmentErrors() {
        let bad = failure {
            try SettingsLoader.load(Schemas.gateway, SettingsInput(environment: env(["TUNNEL_LISTEN": "0.0.0.0"])))
        }
        #expect(bad?.message == "TUNNEL_LISTEN: \"0.0.0.0\" is not HOST:PORT (e.g. 0.0.0.0:7443)")
        #expect(bad?.exitCode == 2)
        let unknown = failure {
            try SettingsLoader.load(Schemas.gateway, SettingsInput(environment: env(["TUNNEL_LISTN": "x"])))
        }
        #expect(
            unknown?.message
                == "TUNNEL_LISTN: unknown setting for tunnel gateway (did you mean TUNNEL_LISTEN?); unset it or fix the name"
        )
        let nothingClose = failure {
            try SettingsLoader.load(Schemas.operator, SettingsInput(environment: env(["TUNNEL_FROBNICATE": "x"])))
        }
        #expect(
            nothingClose?.message.hasPrefix(
                "TUNNEL_FROBNICATE: unknown setting for tunnel operator (known: TUNNEL_CERT, ") == true)
        // Another role's variable is legitimate on the same machine and ignored.
        let s = try? SettingsLoader.load(
            Schemas.gateway, SettingsInput(environment: env(["TUNNEL_GATEWAY": "gw:1", "TUNNEL_SERVICES": "x"])))
        #expect(s != nil)
        // Variables that are not TUNNEL_* are none of our business.
        #expect(
            (try? SettingsLoader.load(
                Schemas.gateway, SettingsInput(environment: env(["TUNNELX": "1", "XTUNNEL_LISTEN": "1"])))) != nil)
    }

    @Test func missingRequired() throws {
        let f = failure {
            try SettingsLoader.load(
                Schemas.client, SettingsInput(environment: env(["TUNNEL_SERVICES": "ssh=127.0.0.1:22"])))
        }
        #expect(
            f?.message
                == "missing required setting \"gateway\": set it in /etc/tunnel/client.yaml, TUNNEL_GATEWAY or --gateway"
        )
        #expect(f?.exitCode == 2)
        try withTemporaryDirectory { dir in
            // A node offering only built-in services needs no TCP service…
            let kubeOnly = try SettingsLoader.load(
                Schemas.client,
                SettingsInput(
                    environment: env(["TUNNEL_GATEWAY": "gw:7443", "TUNNEL_KUBERNETES": "\(dir)/kubeconfig"])))
            #expect(throws: Never.self) { try ClientSettings(kubeOnly).checkOffersAService(configFile: nil) }
            #expect(try ClientSettings(kubeOnly).services.isEmpty)
            // …but a node offering nothing at all is refused with one sentence naming the fix.
            try writeFile("\(dir)/c.yaml", "services: {}\n")
            let nothing = try SettingsLoader.load(
                Schemas.client,
                SettingsInput(configPath: "\(dir)/c.yaml", environment: env(["TUNNEL_GATEWAY": "gw:7443"])))
            let refusal = failure { try ClientSettings(nothing).checkOffersAService(configFile: nothing.configFile) }
            #expect(
                refusal?.message
                    == "this node offers no service: give at least one of --service NAME=HOST:PORT, --kubernetes KUBECONFIG, --shell-user USER or --log-source NAME=SOURCE (or set services, kubernetes, shell-user or log-sources in \(dir)/c.yaml)"
            )
            #expect(refusal?.exitCode == 2)
        }
        let noFile = failure {
            try SettingsLoader.load(
                Schemas.client, SettingsInput(configPath: "/nonexistent/c.yaml", environment: env()))
        }
        #expect(noFile?.message.hasPrefix("--config: config file /nonexistent/c.yaml does not exist;") == true)
    }

    @Test func flagErrorsAndLabels() {
        func load(_ flags: [String: [String]]) -> CommandFailure? {
            do {
                _ = try SettingsLoader.load(
                    Schemas.client,
                    SettingsInput(
                        environment: env(["TUNNEL_GATEWAY": "gw:1", "TUNNEL_SERVICES": "ssh=127.0.0.1:22"]),
                        flags: flags))
                return nil
            } catch {
                return error
            }
        }
        #expect(
            load(["node-labels": ["bad key=x"]])?.message
                == "--node-labels/--node-label: invalid label key \"bad key\": use [PREFIX/]NAME, NAME being 1–63 of A-Z a-z 0-9 . _ - starting and ending with a letter or digit, PREFIX a lower-case DNS name (e.g. site or example.com/rack)"
        )
        let long = String(repeating: "a", count: 64)
        #expect(
            load(["node-labels": ["site=\(long)"]])?.message
                == "--node-labels/--node-label: invalid label value \"\(long)\": use at most 63 of A-Z a-z 0-9 . _ - starting and ending with a letter or digit"
        )
        #expect(
            load(["node-labels": ["site"]])?.message.hasPrefix("--node-labels/--node-label: \"site\" is not NAME=VALUE")
                == true)
        #expect(
            load(["services": ["ssh=localhost"]])?.message
                == "--services/--service: service \"ssh\": \"localhost\" is not HOST:PORT (e.g. localhost:7443)")
        #expect(
            load(["services": ["SSH=127.0.0.1:22"]])?.message.hasPrefix(
                "--services/--service: invalid service name \"SSH\"") == true)
        #expect(
            load(["keepalive-interval": ["0s"]])?.message.hasPrefix(
                "--keepalive-interval: \"0s\" is not a positive duration") == true)
        #expect(
            load(["server-name": ["not a name"]])?.message
                == "--server-name: \"not a name\" is not a host name or IP address (e.g. gateway.example.com)")
        // Good labels: prefix, dots, empty value.
        #expect(load(["node-labels": ["example.com/rack=r-7,site=,a.b_c=X.y"]]) == nil)
    }

    @Test func reportShowsSources() throws {
        let s = try SettingsLoader.load(
            Schemas.client,
            SettingsInput(environment: env(["TUNNEL_GATEWAY": "gw:1"]), flags: ["services": ["ssh=127.0.0.1:22"]]))
        let report = s.report()
        #expect(report.contains("gateway: gw:1  # TUNNEL_GATEWAY"))
        #expect(report.contains("services:  # --services/--service\n  ssh: 127.0.0.1:22"))
        #expect(report.contains("node-labels: {}  # default"))
    }

    @Test func schemaDefaultsAreValidAndHelpful() throws {
        for schema in Schemas.all {
            for spec in schema.settings {
                #expect(!spec.help.isEmpty)
                #expect(spec.key == spec.key.lowercased() && !spec.key.contains("_"))
                if let example = spec.example, spec.kind != .path {
                    #expect(throws: Never.self) {
                        try SettingsLoader.parse(example, as: spec, relativeTo: nil, environment: ["HOME": "/h"])
                    }
                }
            }
        }
        #expect(Schemas.gateway.spec("data-dir")?.environmentName == "TUNNEL_DATA_DIR")
        #expect(Schemas.client.spec("node-labels")?.fullHelp.contains("env TUNNEL_NODE_LABELS") == true)
    }
}

@Suite struct ValueTests {
    @Test func hostPortAccepts() throws {
        #expect(try HostPort.parse("gw.example.com:7443") == HostPort(host: "gw.example.com", port: 7443))
        #expect(try HostPort.parse("1.2.3.4:7443") == HostPort(host: "1.2.3.4", port: 7443))
        #expect(try HostPort.parse("[::1]:7443") == HostPort(host: "::1", port: 7443))
        #expect(try HostPort.parse("[2001:db8::1]:1").description == "[2001:db8::1]:1")
        #expect(try HostPort.parse("localhost:65535").port == 65535)
    }

    @Test func hostPortRejects() {
        func problem(_ text: String) -> String? {
            do {
                _ = try HostPort.parse(text)
                return nil
            } catch { return error.text }
        }
        #expect(problem("0.0.0.0") == "\"0.0.0.0\" is not HOST:PORT (e.g. 0.0.0.0:7443)")
        #expect(
            problem("::1:7443") == "\"::1:7443\" is not HOST:PORT: put IPv6 addresses in brackets (e.g. [::1]:7443)")
        #expect(problem("[::1]") == "\"[::1]\" is not HOST:PORT: the port is missing (e.g. [::1]:7443)")
        #expect(
            problem("[::1:7443")
                == "\"[::1:7443\" is not HOST:PORT: missing \"]\" after the IPv6 address (e.g. [::1]:7443)")
        #expect(
            problem("[nothex]:1")
                == "\"[nothex]:1\" is not HOST:PORT: \"nothex\" is not an IPv6 address (e.g. [::1]:7443)")
        #expect(
            problem("gw:0") == "\"gw:0\" is not HOST:PORT: the port must be a number from 1 to 65535 (e.g. gw:7443)")
        #expect(problem("gw:65536")?.contains("1 to 65535") == true)
        #expect(problem("gw:+80")?.contains("1 to 65535") == true)
        #expect(problem("gw:") == "\"gw:\" is not HOST:PORT: the port is missing (e.g. gw:7443)")
        #expect(
            problem(":7443")
                == "\":7443\" is not HOST:PORT: the host is missing; to listen on every address use 0.0.0.0 (e.g. 0.0.0.0:7443)"
        )
        #expect(
            problem("https://gw:7443") == "\"https://gw:7443\" is not HOST:PORT: drop the \"https://\" (e.g. gw:7443)")
        #expect(
            problem("1.2.3.999:1")
                == "\"1.2.3.999:1\" is not HOST:PORT: \"1.2.3.999\" is not a host name or IPv4 address (e.g. gateway.example.com:7443)"
        )
        #expect(problem("bad_host:1") != nil)
        #expect(problem("-gw:1") != nil)
        #expect(problem("") == "\"\" is not HOST:PORT (e.g. gateway.example.com:7443)")
        #expect(problem("gw :1") != nil)
    }

    @Test func durations() throws {
        #expect(try DurationText.parse("30s") == .seconds(30))
        #expect(try DurationText.parse("15m") == .seconds(900))
        #expect(try DurationText.parse("24h") == .seconds(86_400))
        #expect(try DurationText.parse("1h30m") == .seconds(5_400))
        #expect(try DurationText.parse("250ms") == .milliseconds(250))
        #expect(try DurationText.parse("7d") == .seconds(604_800))
        for bad in ["", "30", "s", "1.5h", "-1s", "10x", "1 h", "99999999999999999999h"] {
            #expect(throws: ValueProblem.self) { try DurationText.parse(bad) }
        }
        #expect(DurationText.format(.seconds(5_400)) == "1h30m")
        #expect(DurationText.format(.milliseconds(1500)) == "1500ms")
    }

    @Test func suggestions() {
        #expect(Suggest.closest(to: "service", in: ["services", "gateway"]) == "services")
        #expect(Suggest.closest(to: "gatway", in: ["services", "gateway"]) == "gateway")
        #expect(Suggest.closest(to: "zzz", in: ["services", "gateway"]) == nil)
    }
}
