import ArgumentParser
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
            #expect(collapsed.firstMatch(of: /\(default[^)]*\) \(default:/) == nil, "tunnel \(path.joined(separator: " ")): \(collapsed)")
        }
    }
}
