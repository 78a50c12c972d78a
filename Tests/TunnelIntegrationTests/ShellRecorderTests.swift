import Foundation
import Glibc
import Multiplex
import Testing
import TunnelRuntime
import TunnelTLS

@testable import TunnelGateway

/// The gateway's asciicast v2 recorder, fed frames as a relay's tap would, checked by parsing
/// the file and by the real asciinema (Debian's package, installed by scripts/setup.sh).
@Suite("Shell recordings")
struct ShellRecorderTests {
    /// A clock the test moves by hand.
    /// `@unchecked Sendable`: only the test's own thread reads and writes it.
    final class ManualClock: @unchecked Sendable {
        var nanoseconds: UInt64 = 7_000_000_000
        var recording: RecordingClock {
            RecordingClock(unixSeconds: { 1_700_000_000 }, monotonicNanoseconds: { self.nanoseconds })
        }
    }

    final class Directory {
        let path: String
        init() throws {
            var template = Array("/tmp/tunnel-recording-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
            path = String(cString: made)
        }
        deinit { _ = try? FileManager.default.removeItem(atPath: path) }
    }

    static let parameters = ShellParameters(term: "xterm-256color", columns: 100, rows: 30)

    /// The output of the session below, as a terminal shows it.
    static let output = "$ ls \"a\\b\"\r\n\u{1b}[1mhéllo\u{1b}[0m 👍\u{7}\r\n\u{1}\u{7f}"

    /// Feeds a session whose frames and UTF-8 sequences are cut at awkward places.
    static func feedSession(_ recorder: ShellRecorder, _ clock: ManualClock) {
        func feed(_ frames: [ShellFrame], _ direction: StreamRelay.Direction, at seconds: Double, chunk: Int = .max) {
            clock.nanoseconds = 7_000_000_000 + UInt64(seconds * 1_000_000_000)
            var bytes: [UInt8] = []
            for frame in frames { ShellFraming.encode(frame, into: &bytes) }
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + chunk)
                recorder.feed(bytes[offset..<end], direction: direction)
                offset = end
            }
        }
        let text = Array(output.utf8)
        let e = text.firstIndex(of: 0xC3)! // é is C3 A9: cut between its bytes
        let thumb = text.firstIndex(of: 0xF0)! // 👍 is four bytes: cut after the first and the third
        feed([.data(Array("ls \"a\\b\"\r".utf8)[...])], .fromFirst, at: 0.25)
        feed([.data(text[..<(e + 1)]), .data(text[(e + 1)..<(thumb + 1)])], .fromSecond, at: 0.5, chunk: 3)
        feed([.resize(columns: 120, rows: 40)], .fromFirst, at: 1.0, chunk: 1)
        feed([.data(text[(thumb + 1)..<(thumb + 3)]), .data(text[(thumb + 3)...])], .fromSecond, at: 1.5)
        feed([.exit(status: 0)], .fromSecond, at: 2.0)
    }

    static func lines(_ path: String) throws -> [Any] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) }
    }

    @Test("a session becomes asciicast v2 that the real asciinema plays, with the SHA-256 of the file")
    func recordsAsciicast() throws {
        let directory = try Directory()
        let path = "\(directory.path)/session.cast"
        let clock = ManualClock()
        let recorder = try ShellRecorder(
            path: path, parameters: Self.parameters, recordInput: true, clock: clock.recording)
        Self.feedSession(recorder, clock)
        let (sha256, size) = try recorder.finish()
        #expect(recorder.framingFailure == nil)

        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(size == bytes.count)
        #expect(sha256 == Hex.encode(SHA256.hash(bytes)))
        var status = stat()
        #expect(stat(path, &status) == 0 && status.st_mode & 0o777 == 0o600)

        let lines = try Self.lines(path)
        let header = try #require(lines.first as? [String: Any])
        #expect(header["version"] as? Int == 2)
        #expect(header["width"] as? Int == 100)
        #expect(header["height"] as? Int == 30)
        #expect(header["timestamp"] as? Int == 1_700_000_000)
        #expect(header["env"] as? [String: String] == ["TERM": "xterm-256color"])
        #expect(header["command"] == nil)
        let events = try lines.dropFirst().map { try #require($0 as? [Any]) }
        #expect(events.map { $0[1] as? String } == ["i", "o", "o", "r", "o"])
        #expect(events.map { $0[0] as? Double } == [0.25, 0.5, 0.5, 1.0, 1.5])
        #expect(events[0][2] as? String == "ls \"a\\b\"\r")
        #expect(events[3][2] as? String == "120x40")
        #expect(events.filter { $0[1] as? String == "o" }.map { $0[2] as! String }.joined() == Self.output)

        // `asciinema play` needs no terminal; `asciinema cat` insists on one, so script(1) lends it one.
        let played = try runAsciinema(["play", "--idle-time-limit", "0.01", path])
        #expect(played.status == 0)
        #expect(played.output == Array(Self.output.utf8))
        let catted = try runProgram(
            "script", ["--quiet", "--return", "--command", "asciinema cat \(path)", "/dev/null"])
        #expect(catted.status == 0)
        #expect(catted.output == Array(Self.output.utf8))
    }

    @Test("a command the operator asked for is in the header, as asciicast v2 keeps it")
    func commandInHeader() throws {
        let directory = try Directory()
        let path = "\(directory.path)/session.cast"
        var parameters = Self.parameters
        parameters.command = "sh -c 'exit 3'\n\"é\""
        let recorder = try ShellRecorder(
            path: path, parameters: parameters, recordInput: false, clock: ManualClock().recording)
        _ = try recorder.finish()
        let header = try #require(try Self.lines(path).first as? [String: Any])
        #expect(header["command"] as? String == parameters.command)
        #expect(header["env"] as? [String: String] == ["TERM": "xterm-256color"])
    }

    @Test("keystrokes are left out unless the policy asks for them")
    func inputOnlyWhenAsked() throws {
        let directory = try Directory()
        let path = "\(directory.path)/session.cast"
        let clock = ManualClock()
        let recorder = try ShellRecorder(
            path: path, parameters: Self.parameters, recordInput: false, clock: clock.recording)
        Self.feedSession(recorder, clock)
        _ = try recorder.finish()
        let kinds = try Self.lines(path).dropFirst().compactMap { ($0 as? [Any])?[1] as? String }
        #expect(kinds == ["o", "o", "r", "o"])
    }

    @Test("broken framing stops the events there; the file stays a valid recording with its hash")
    func framingFailure() throws {
        let directory = try Directory()
        let path = "\(directory.path)/session.cast"
        let recorder = try ShellRecorder(
            path: path, parameters: Self.parameters, recordInput: true, clock: ManualClock().recording)
        recorder.feed(ShellFraming.encode(.data(Array("ok".utf8)[...]))[...], direction: .fromSecond)
        recorder.feed([9, 0, 0, 0, 0], direction: .fromSecond)
        recorder.feed(ShellFraming.encode(.data(Array("lost".utf8)[...]))[...], direction: .fromSecond)
        #expect(recorder.framingFailure?.code == .protocolError)
        let (sha256, _) = try recorder.finish()
        #expect(sha256 == Hex.encode(SHA256.hash(try Array(Data(contentsOf: URL(fileURLWithPath: path))))))
        #expect(try Self.lines(path).count == 2)
    }

    @Test("an existing file is never overwritten")
    func refusesExistingFile() throws {
        let directory = try Directory()
        let path = "\(directory.path)/session.cast"
        _ = try ShellRecorder(path: path, parameters: Self.parameters, recordInput: false).finish()
        #expect(throws: ShellRecordingError.self) {
            try ShellRecorder(path: path, parameters: Self.parameters, recordInput: false)
        }
    }

    @Test("JSON strings: quotes, backslashes and control characters are escaped")
    func jsonEscaping() {
        var out: [UInt8] = []
        ShellRecorder.appendJSONString("a\"b\\c\n\r\t\u{0}\u{1b}\u{7f}é".utf8, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #""a\"b\\c\n\r\t\u0000\u001b\u007fé""#)
    }
}

/// Runs the real asciinema; a missing one fails the test with the way to install it.
func runAsciinema(_ arguments: [String]) throws -> (status: Int32, output: [UInt8]) {
    guard findProgram("asciinema") != nil else {
        throw TestFailure("asciinema is not installed (the Debian package asciinema); run scripts/setup.sh")
    }
    return try runProgram("asciinema", arguments)
}

func findProgram(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
}

/// Runs a program found on PATH with stdin from /dev/null; its stdout, and its status.
func runProgram(_ name: String, _ arguments: [String]) throws -> (status: Int32, output: [UInt8]) {
    guard let path = findProgram(name) else { throw TestFailure("\(name) is not installed; run scripts/setup.sh") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, Array(data))
}
