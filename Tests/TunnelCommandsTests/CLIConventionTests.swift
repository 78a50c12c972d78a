import ArgumentParser
import Foundation
import Testing

@testable import TunnelCommands

/// Conventions every command follows, checked over the whole command tree.
@Suite struct CLIConventionTests {
    /// Every command type under `tunnel`, the root included, with its path of names.
    static func allCommands() -> [(path: [String], type: ParsableCommand.Type)] {
        var found: [(path: [String], type: ParsableCommand.Type)] = []
        func walk(_ type: ParsableCommand.Type, _ path: [String]) {
            found.append((path, type))
            for sub in type.configuration.subcommands {
                walk(sub, path + [sub.configuration.commandName ?? "\(sub)"])
            }
        }
        walk(Tunnel.self, [])
        return found
    }

    @Test("no help text states a default that the argument parser prints again")
    func defaultsOnce() {
        for (path, type) in Self.allCommands() {
            let help = Tunnel.helpMessage(for: type, columns: 10_000)
            let collapsed = help.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(
                collapsed.firstMatch(of: /\(default[^)]*\) \(default:/) == nil,
                "tunnel \(path.joined(separator: " ")): \(collapsed)")
        }
    }

    @Test(
        "the version: the commit baked in at build time, the libraries' own versions, one JSON object with the documented keys"
    )
    func version() throws {
        let info = VersionInfo.current
        #expect(
            info.commit == "unknown" || (info.commit.count == 12 && info.commit.allSatisfy(\.isHexDigit)),
            "\(info.commit)")
        #expect(info.openssl.hasPrefix("OpenSSL 3."))
        #expect(info.libuv.split(separator: ".").count == 3)
        #expect(info.swift.hasPrefix("6.") || info.swift.hasPrefix(">="))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.json.utf8)) as? [String: String])
        #expect(Set(object.keys) == ["version", "commit", "swift", "openssl", "libuv"])
        #expect(try JSONDecoder().decode(VersionInfo.self, from: Data(info.json.utf8)) == info)
        #expect(Tunnel.configuration.version == info.line)
        #expect(info.reported == (info.commit == "unknown" ? info.version : "\(info.version)+\(info.commit)"))
        for arguments in [["--json"], ["-o", "json"], ["--output", "json"]] {
            #expect(try VersionCommand.parse(arguments).output.isJSON, "\(arguments)")
        }
        #expect(try !VersionCommand.parse([]).output.isJSON)
        #expect(throws: (any Error).self) { try VersionCommand.parse(["-o", "yaml"]) }
    }

    @Test("every command that reads takes --json and -o json")
    func readingCommandsTakeJSON() throws {
        let reading: [[String]] = [
            ["nodes"], ["node", "ls"], ["user", "ls"], ["token", "ls"], ["policy", "show"], ["whoami"],
            ["audit", "ls"], ["audit", "show", "s-1"], ["audit", "verify"], ["version"],
        ]
        for command in reading {
            for flags in [["--json"], ["-o", "json"]] {
                #expect(throws: Never.self, "\(command + flags)") { _ = try Tunnel.parseAsRoot(command + flags) }
            }
            #expect(throws: (any Error).self, "\(command)") { _ = try Tunnel.parseAsRoot(command + ["-o", "xml"]) }
        }
    }
}
