import Multiplex
import Testing
import TunnelRuntime

/// The shell stream's framing (`docs/SHELL.md`): encoder, incremental decoder and its limits.
@Suite("Shell framing")
struct ShellFramingTests {
    static let towardsNode: [ShellFrame] = [
        .data(Array("stty size\r".utf8)[...]), .resize(columns: 132, rows: 43), .data([]),
        .data([UInt8](repeating: 0xA5, count: ShellFraming.maxPayloadLength)[...]), .resize(columns: 65535, rows: 1),
    ]
    static let towardsOperator: [ShellFrame] = [
        .data(Array("\u{1b}[1mhello\u{1b}[0m\r\n".utf8)[...]), .data([0xE2, 0x82]), .data([0xAC]), .exit(status: -2),
    ]

    /// Decodes `bytes` fed in pieces of `chunk` bytes, checking every piece is taken.
    static func decode(_ bytes: [UInt8], _ direction: ShellDirection, chunk: Int) throws(Failure) -> [ShellFrame] {
        var decoder = ShellFrameDecoder(direction: direction)
        var frames: [ShellFrame] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            decoder.append(bytes[offset..<end])
            while let frame = try decoder.next() { frames.append(frame) }
            offset = end
        }
        return frames
    }

    static func encoded(_ frames: [ShellFrame]) -> [UInt8] {
        var bytes: [UInt8] = []
        for frame in frames { ShellFraming.encode(frame, into: &bytes) }
        return bytes
    }

    @Test("frames round-trip both ways, whole, byte by byte and in odd pieces", arguments: [Int.max, 1, 7, 65_541])
    func roundTrip(chunk: Int) throws {
        #expect(try Self.decode(Self.encoded(Self.towardsNode), .toNode, chunk: chunk) == Self.towardsNode)
        #expect(try Self.decode(Self.encoded(Self.towardsOperator), .toOperator, chunk: chunk) == Self.towardsOperator)
    }

    @Test("the wire layout is type, 32-bit big-endian length, payload")
    func layout() {
        #expect(ShellFraming.encode(.data([0x61, 0x62])) == [1, 0, 0, 0, 2, 0x61, 0x62])
        #expect(ShellFraming.encode(.resize(columns: 0x0102, rows: 0x0304)) == [2, 0, 0, 0, 4, 1, 2, 3, 4])
        #expect(ShellFraming.encode(.exit(status: -1)) == [3, 0, 0, 0, 4, 0xFF, 0xFF, 0xFF, 0xFF])
    }

    @Test("data longer than one frame's limit is sent as several frames")
    func longDataIsSplit() throws {
        let payload = (0..<(ShellFraming.maxPayloadLength * 2 + 3)).map { UInt8(truncatingIfNeeded: $0) }
        let frames = try Self.decode(ShellFraming.encode(.data(payload[...])), .toOperator, chunk: 4096)
        #expect(frames.count == 3)
        #expect(
            frames.flatMap { frame -> [UInt8] in
                guard case .data(let bytes) = frame else { return [] }
                return Array(bytes)
            } == payload)
    }

    @Test("a length above the limit is refused from the header alone, before any payload")
    func oversizeRefused() {
        var decoder = ShellFrameDecoder(direction: .toNode)
        let length = UInt32(ShellFraming.maxPayloadLength + 1)
        decoder.append([
            1, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF),
        ])
        #expect(throws: Failure.self) { try decoder.next() }
        do {
            _ = try decoder.next()
        } catch {
            #expect(error.code == .frameSizeError)
        }
    }

    @Test("unknown types, wrong lengths, frames sent the wrong way and frames after exit are protocol errors")
    func brokenFramesRefused() {
        func failure(_ bytes: [UInt8], _ direction: ShellDirection) -> Failure? {
            do {
                _ = try Self.decode(bytes, direction, chunk: 1)
                return nil
            } catch {
                return error
            }
        }
        #expect(failure([9, 0, 0, 0, 0], .toNode)?.code == .protocolError)
        #expect(failure([2, 0, 0, 0, 5, 0, 80, 0, 24, 0], .toNode)?.code == .frameSizeError)
        #expect(failure(ShellFraming.encode(.resize(columns: 80, rows: 24)), .toOperator)?.code == .protocolError)
        #expect(failure(ShellFraming.encode(.exit(status: 0)), .toNode)?.code == .protocolError)
        #expect(
            failure(ShellFraming.encode(.exit(status: 0)) + ShellFraming.encode(.data([1])), .toOperator)?.code
                == .protocolError)
        #expect(failure(ShellFraming.encode(.exit(status: 0)), .toOperator) == nil)
    }

    @Test("stream parameters: terminal type and size are checked")
    func parameters() throws {
        let parameters = ShellParameters(term: "xterm-256color", columns: 120, rows: 40)
        #expect(parameters.dictionary == ["term": "xterm-256color", "cols": "120", "rows": "40"])
        #expect(try ShellParameters(parameters.dictionary) == parameters)
        for bad in [
            ["term": "xterm; rm -rf /", "cols": "80", "rows": "24"], ["term": "", "cols": "80", "rows": "24"],
            ["term": String(repeating: "x", count: 65), "cols": "80", "rows": "24"], ["cols": "80", "rows": "24"],
            ["term": "vt100", "cols": "0", "rows": "24"], ["term": "vt100", "cols": "80", "rows": "65536"],
            ["term": "vt100", "cols": "80"],
        ] {
            #expect(throws: Failure.self, "\(bad)") { try ShellParameters(bad) }
        }
    }

    @Test("a command parameter: any printable text, tabs and newlines; no NUL or other control characters; bounded")
    func commandParameter() throws {
        let command = ShellParameters(
            term: "dumb", columns: 80, rows: 24, command: "for f in *; do\n\techo \"$f\" 'é'; done")
        #expect(command.dictionary["command"] == command.command)
        #expect(try ShellParameters(command.dictionary) == command)
        #expect(try ShellParameters(["term": "dumb", "cols": "80", "rows": "24"]).command == nil)
        let longest = String(repeating: "x", count: ShellParameters.maxCommandLength)
        #expect(
            try ShellParameters(["term": "dumb", "cols": "80", "rows": "24", "command": longest]).command == longest)
        for bad in ["", "true\0; rm -rf /", "echo \u{1b}[2J", "echo\r", longest + "x"] {
            #expect(throws: Failure.self, "\(bad.debugDescription)") {
                try ShellParameters(["term": "dumb", "cols": "80", "rows": "24", "command": bad])
            }
        }
    }
}
