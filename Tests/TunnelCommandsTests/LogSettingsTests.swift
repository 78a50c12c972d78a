import Foundation
import Testing
import TunnelClient

@testable import TunnelCommands

/// `log-sources` and `log-root`: what the client will serve through `tunnel logs`, checked when
/// the configuration is loaded.
@Suite struct LogSettingsTests {
    let env = [
        "HOME": "/nonexistent-home", "PATH": "/usr/bin", "TUNNEL_GATEWAY": "gw:7443",
        "TUNNEL_SERVICES": "ssh=127.0.0.1:22",
    ]

    func load(_ flags: [String: [String]], environment: [String: String] = [:]) throws(CommandFailure) -> ClientSettings
    {
        try ClientSettings(
            try SettingsLoader.load(
                Schemas.client, SettingsInput(environment: env.merging(environment) { _, new in new }, flags: flags)))
    }

    @Test func defaultsOfferNoLogs() throws {
        let settings = try load([:])
        #expect(settings.logSources.isEmpty)
        #expect(settings.logRoot == "/var/log")
    }

    @Test func filesGlobsAndUnitsFromAFile() throws {
        try withTemporaryDirectory { dir in
            let config = "\(dir)/client.yaml"
            try writeFile(
                config,
                """
                log-root: /srv/logs
                log-sources:
                  syslog: /srv/logs/syslog
                  app: /srv/logs/app/../app/*.log
                  k3s: journald:k3s.service
                """)
            let settings = try ClientSettings(
                try SettingsLoader.load(Schemas.client, SettingsInput(configPath: config, environment: env)))
            #expect(settings.logRoot == "/srv/logs")
            #expect(
                settings.logSources == [
                    "syslog": .files("/srv/logs/syslog"), "app": .files("/srv/logs/app/*.log"),
                    "k3s": .journald(unit: "k3s.service"),
                ])
        }
    }

    @Test func aSourceOutsideTheLogRootIsRefusedWhereItWasSet() throws {
        try withTemporaryDirectory { dir in
            let config = "\(dir)/client.yaml"
            try writeFile(
                config, "gateway: gw:7443\nservices:\n  ssh: 127.0.0.1:22\nlog-sources:\n  shadow: /etc/shadow\n")
            let fromFile = failure {
                try SettingsLoader.load(Schemas.client, SettingsInput(configPath: config, environment: ["HOME": "/h"]))
            }
            #expect(
                fromFile?.message
                    == "\(config):4: log-sources: \"shadow\" is /etc/shadow, outside log-root /var/log; serve only files under /var/log, or set log-root"
            )
            #expect(fromFile?.exitCode == 2)
        }
        // `..` cannot climb out; the root itself is no file.
        #expect(
            failure { try load(["log-sources": ["up=/var/log/../../etc/passwd"]]) }?.message
                == "--log-sources/--log-source: \"up\" is /etc/passwd, outside log-root /var/log; serve only files under /var/log, or set log-root"
        )
        #expect(
            failure { try load(["log-sources": ["all=/var/log"]]) }?.message.contains(
                "\"all\" is /var/log, outside log-root /var/log") == true)
        #expect(
            failure { try load(["log-sources": ["app=/srv/app.log"]], environment: ["TUNNEL_LOG_ROOT": "/var/log"]) }?
                .message
                .hasPrefix("--log-sources/--log-source: \"app\" is /srv/app.log, outside log-root /var/log") == true)
        // Moving the root is the fix; journald units are not files and need no root.
        #expect(
            try load(["log-sources": ["app=/srv/app.log", "k3s=journald:k3s"], "log-root": ["/srv"]]).logSources.count
                == 2)
        #expect(
            failure { try load(["log-sources": ["app=/srv/app.log"], "log-root": ["srv"]]) }?.message
                == "--log-root: \"srv\" must be an absolute path (e.g. /var/log)")
    }

    @Test func malformedSourcesAreRefused() {
        func message(_ entry: String) -> String? { failure { try load(["log-sources": [entry]]) }?.message }
        #expect(
            message("app=app.log")
                == "--log-sources/--log-source: log source \"app\": \"app.log\" is neither an absolute file path or glob nor journald:UNIT (e.g. /var/log/syslog, /var/log/app/*.log, journald:k3s)"
        )
        #expect(
            message("k3s=journald:")
                == "--log-sources/--log-source: log source \"k3s\": \"journald:\" does not name a systemd unit (e.g. journald:k3s or journald:k3s.service)"
        )
        #expect(
            message("app=/var/log/app/")
                == "--log-sources/--log-source: log source \"app\": \"/var/log/app/\" names a directory; name its files (e.g. /var/log/app/*.log)"
        )
        #expect(message("k3s=journald:-all") != nil)
        #expect(message("k3s=journald:k3s; rm") != nil)
        #expect(
            message("App=/var/log/app.log")?.hasPrefix("--log-sources/--log-source: invalid log source name \"App\"")
                == true)
    }

    @Test func theLogsCommandChecksItsRequestBeforeConnecting() throws {
        func request(_ arguments: [String]) throws -> LogRequest {
            try LogsCommand.parse(["node-17"] + arguments).request()
        }
        #expect(
            try request(["app", "-f", "-n", "5", "--since", "1h30m", "--grep", "oops"])
                == LogRequest(source: "app", lines: 5, follow: true, sinceSeconds: 5400, grep: "oops"))
        #expect(try request([]).parameters == ["lines": "100"])
        #expect(
            failure { try request(["--since", "500ms"]) }?.message == "--since: \"500ms\" is shorter than a second")
        #expect(failure { try request(["-n", "2000000"]) }?.message == "lines: 2000000 is not between 0 and 1000000")
        #expect(failure { try request(["--grep", ""]) }?.message.hasPrefix("grep: the text must be") == true)
    }
}
