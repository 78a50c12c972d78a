import Multiplex

/// Which way a shell frame travels (`docs/SHELL.md`): each way allows its own frame types.
public enum ShellDirection: Sendable {
    /// From the operator's terminal to the node's shell: data (keystrokes) and resize.
    case toNode
    /// From the node's shell to the operator's terminal: data (output) and exit.
    case toOperator
}

/// One frame of a shell stream (`docs/SHELL.md`).
public enum ShellFrame: Equatable, Sendable {
    /// Terminal bytes: keystrokes towards the node, output towards the operator.
    case data(ArraySlice<UInt8>)
    /// The operator's terminal changed size; towards the node only.
    case resize(columns: UInt16, rows: UInt16)
    /// The shell exited with this status (128 + N when killed by signal N); towards the
    /// operator only, and the last frame of that direction.
    case exit(status: Int32)
}

/// The shell stream's framing: `type:u8 length:u32be payload`, and the parameters its OPEN carries.
public enum ShellFraming {
    public static let headerLength = 5
    /// The largest payload a frame may carry. Bounds what a decoder buffers for a frame split
    /// across reads; it is also the size of one read from a terminal or pipe, so a read is a frame.
    public static let maxPayloadLength = 64 * 1024

    enum FrameType: UInt8 {
        case data = 1
        case resize = 2
        case exit = 3
    }

    /// Appends the encoding of `frame` to `out`. Data longer than `maxPayloadLength` becomes
    /// several data frames.
    public static func encode(_ frame: ShellFrame, into out: inout [UInt8]) {
        switch frame {
        case .data(let bytes):
            var rest = bytes
            repeat {
                let piece = rest.prefix(maxPayloadLength)
                rest = rest.dropFirst(piece.count)
                appendHeader(.data, length: piece.count, to: &out)
                out.append(contentsOf: piece)
            } while !rest.isEmpty
        case .resize(let columns, let rows):
            appendHeader(.resize, length: 4, to: &out)
            out.append(contentsOf: [UInt8(columns >> 8), UInt8(columns & 0xff), UInt8(rows >> 8), UInt8(rows & 0xff)])
        case .exit(let status):
            appendHeader(.exit, length: 4, to: &out)
            appendUInt32(UInt32(bitPattern: status), to: &out)
        }
    }

    public static func encode(_ frame: ShellFrame) -> [UInt8] {
        var out: [UInt8] = []
        encode(frame, into: &out)
        return out
    }

    private static func appendHeader(_ type: FrameType, length: Int, to out: inout [UInt8]) {
        out.append(type.rawValue)
        appendUInt32(UInt32(length), to: &out)
    }

    private static func appendUInt32(_ value: UInt32, to out: inout [UInt8]) {
        out.append(contentsOf: [
            UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff),
        ])
    }
}

/// Turns received shell-stream bytes into frames, incrementally: bytes may arrive one at a time
/// or many frames at once. The header's type and length are checked before any payload is held,
/// so a peer cannot make the decoder buffer more than one maximal frame.
///
/// A frame that arrives whole inside one received chunk is returned as a slice of that chunk;
/// only a frame split across chunks is assembled in the decoder's own buffer.
public struct ShellFrameDecoder {
    public let direction: ShellDirection
    /// Bytes received but not yet decoded, as handed in by `append`.
    private var input: ArraySlice<UInt8> = []
    /// The start of a frame split across chunks: at most one header plus one maximal payload.
    private var partial: [UInt8] = []
    /// An exit frame ends its direction: anything after it is a protocol error.
    private var exited = false

    public init(direction: ShellDirection) {
        self.direction = direction
    }

    /// Hands the decoder more received bytes. Call `next()` until it returns nil before the next
    /// `append`, or the remaining bytes are copied once to keep them.
    public mutating func append(_ bytes: ArraySlice<UInt8>) {
        if bytes.isEmpty { return }
        input = input.isEmpty ? bytes : ArraySlice(Array(input) + bytes)
    }

    /// The next complete frame, nil when more bytes are needed, or a `Failure` naming the broken
    /// rule; after a failure the stream must be reset, since the decoder's position is lost.
    public mutating func next() throws(Failure) -> ShellFrame? {
        if partial.isEmpty {
            guard input.count >= ShellFraming.headerLength else {
                take(upTo: ShellFraming.headerLength)
                return nil
            }
            let (type, length) = try header(input.prefix(ShellFraming.headerLength))
            let frameLength = ShellFraming.headerLength + length
            guard input.count >= frameLength else {
                partial.reserveCapacity(frameLength)
                take(upTo: frameLength)
                return nil
            }
            let payload = input[(input.startIndex + ShellFraming.headerLength)..<(input.startIndex + frameLength)]
            input = input.dropFirst(frameLength)
            if input.isEmpty { input = [] } // stop pinning the caller's buffer
            return body(type, payload)
        }
        if partial.count < ShellFraming.headerLength {
            take(upTo: ShellFraming.headerLength)
            guard partial.count == ShellFraming.headerLength else { return nil }
        }
        let (type, length) = try header(partial[..<ShellFraming.headerLength])
        let frameLength = ShellFraming.headerLength + length
        partial.reserveCapacity(frameLength)
        take(upTo: frameLength)
        guard partial.count == frameLength else { return nil }
        let frame = partial
        partial = []
        return body(type, frame[ShellFraming.headerLength...])
    }

    /// Moves input bytes into `partial` until it holds `target` bytes or the input runs out.
    private mutating func take(upTo target: Int) {
        let count = min(target - partial.count, input.count)
        partial.append(contentsOf: input.prefix(count))
        input = input.count == count ? [] : input.dropFirst(count)
    }

    /// Everything the header alone can tell: a type known and allowed in this direction, a
    /// length within its type's bounds, and nothing after an exit.
    private func header(_ bytes: ArraySlice<UInt8>) throws(Failure) -> (ShellFraming.FrameType, Int) {
        let base = bytes.startIndex
        guard !exited else { throw Failure(.protocolError, "shell frame after the exit frame") }
        guard let type = ShellFraming.FrameType(rawValue: bytes[base]) else {
            throw Failure(.protocolError, "unknown shell frame type \(bytes[base])")
        }
        let length =
            Int(bytes[base + 1]) << 24 | Int(bytes[base + 2]) << 16 | Int(bytes[base + 3]) << 8 | Int(bytes[base + 4])
        switch (type, direction) {
        case (.data, _):
            guard length <= ShellFraming.maxPayloadLength else {
                throw Failure(
                    .frameSizeError,
                    "shell data frame of \(length) bytes; at most \(ShellFraming.maxPayloadLength) allowed")
            }
        case (.resize, .toNode), (.exit, .toOperator):
            guard length == 4 else {
                throw Failure(.frameSizeError, "shell \(type) frame of \(length) bytes; it has 4")
            }
        case (.resize, .toOperator), (.exit, .toNode):
            throw Failure(.protocolError, "shell \(type) frame sent the wrong way")
        }
        return (type, length)
    }

    private mutating func body(_ type: ShellFraming.FrameType, _ payload: ArraySlice<UInt8>) -> ShellFrame {
        let base = payload.startIndex
        switch type {
        case .data:
            return .data(payload)
        case .resize:
            return .resize(
                columns: UInt16(payload[base]) << 8 | UInt16(payload[base + 1]),
                rows: UInt16(payload[base + 2]) << 8 | UInt16(payload[base + 3]))
        case .exit:
            let status =
                UInt32(payload[base]) << 24 | UInt32(payload[base + 1]) << 16 | UInt32(payload[base + 2]) << 8
                | UInt32(payload[base + 3])
            exited = true
            return .exit(status: Int32(bitPattern: status))
        }
    }
}

/// What the operator sends in the OPEN of a shell stream, as the service request's parameters:
/// the terminal type and its size, and a command when the shell is to run one instead of an
/// interactive session. The node starts the shell with them and the gateway's recording header
/// carries them.
public struct ShellParameters: Equatable, Sendable {
    public static let termKey = "term"
    public static let columnsKey = "cols"
    public static let rowsKey = "rows"
    public static let commandKey = "command"
    /// A terminfo name is short; anything longer is not one.
    public static let maxTermLength = 64
    /// Leaves room in the stream-open metadata (at most 4 KiB) for the rest of the request.
    public static let maxCommandLength = 2048

    public var term: String
    public var columns: UInt16
    public var rows: UInt16
    /// A command line for the login shell's `-c`; nil for an interactive shell.
    public var command: String?

    public init(term: String, columns: UInt16, rows: UInt16, command: String? = nil) {
        self.term = term
        self.columns = columns
        self.rows = rows
        self.command = command
    }

    /// Reads and checks the stream parameters; the failure is a sentence for the operator.
    /// `term` becomes an environment variable and a JSON string, so it is held to what terminfo
    /// names use. A size of 0 is refused: no terminal is that small, and programs divide by it.
    public init(_ parameters: [String: String]) throws(Failure) {
        guard let term = parameters[Self.termKey], (1...Self.maxTermLength).contains(term.utf8.count),
            term.utf8.allSatisfy(Self.isTermCharacter)
        else {
            throw Failure(
                TunnelErrorCode.badRequest,
                "shell parameter \(Self.termKey) (the TERM variable) must be a terminal type such as xterm-256color")
        }
        func size(_ key: String) throws(Failure) -> UInt16 {
            guard let text = parameters[key], let value = UInt16(text), value > 0 else {
                throw Failure(TunnelErrorCode.badRequest, "shell parameter \(key) must be a number from 1 to 65535")
            }
            return value
        }
        let command = parameters[Self.commandKey]
        if let command {
            guard (1...Self.maxCommandLength).contains(command.utf8.count),
                command.utf8.allSatisfy(Self.isCommandCharacter)
            else {
                throw Failure(
                    TunnelErrorCode.badRequest,
                    "shell parameter \(Self.commandKey) must be 1 to \(Self.maxCommandLength) bytes without control characters other than tab and newline"
                )
            }
        }
        self.init(term: term, columns: try size(Self.columnsKey), rows: try size(Self.rowsKey), command: command)
    }

    /// A NUL would cut the command short on its way to exec; other control characters have no
    /// place on a command line and would garble the logs and the audit's human output.
    static func isCommandCharacter(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte != 0x7f || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
    }

    /// Letters, digits and `+-._`, as in `xterm-256color` or `screen.xterm`.
    static func isTermCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    public var dictionary: [String: String] {
        var dictionary = [Self.termKey: term, Self.columnsKey: String(columns), Self.rowsKey: String(rows)]
        dictionary[Self.commandKey] = command
        return dictionary
    }
}
