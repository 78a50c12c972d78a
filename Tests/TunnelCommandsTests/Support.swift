import Foundation
import Testing

@testable import TunnelCommands

/// Runs `body` with a fresh temporary directory that is removed afterwards, even on failure.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("tunnel-cli-test-\(UUID().uuidString)")
        .path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

func writeFile(_ path: String, _ text: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

func mode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as! NSNumber).intValue
}

/// The message of the `CommandFailure` that `body` throws (fails the test if it does not throw one).
func failure<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> CommandFailure? {
    do {
        _ = try body()
        Issue.record("expected a CommandFailure", sourceLocation: sourceLocation)
        return nil
    } catch let failure as CommandFailure {
        return failure
    } catch {
        Issue.record("expected a CommandFailure, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Runs a program and returns its exit status and combined output.
func runProgram(_ path: String, _ arguments: [String]) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
