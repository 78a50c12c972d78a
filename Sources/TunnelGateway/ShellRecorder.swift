import Glibc
import Multiplex
import TunnelIO
import TunnelRuntime
import TunnelTLS

/// Why a recording could not be written; the file holds what was written before.
public struct ShellRecordingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The time a recording is made on: the wall clock for the header's timestamp, a monotonic
/// clock for the event offsets, so a clock step (NTP after a cold boot) cannot make events run
/// backwards. Tests pass their own.
public struct RecordingClock: Sendable {
    public var unixSeconds: @Sendable () -> Int64
    public var monotonicNanoseconds: @Sendable () -> UInt64

    public init(unixSeconds: @escaping @Sendable () -> Int64, monotonicNanoseconds: @escaping @Sendable () -> UInt64) {
        self.unixSeconds = unixSeconds
        self.monotonicNanoseconds = monotonicNanoseconds
    }

    public static let system = RecordingClock(
        unixSeconds: { Int64(time(nil)) }, monotonicNanoseconds: { EventLoop.monotonicNanoseconds })
}

/// Records one shell stream (`docs/SHELL.md`) as an asciicast v2 file, which `asciinema play`
/// and `asciinema cat` read: a header line, then one JSON array per event, `[seconds, "o",
/// text]` for output, `[seconds, "i", text]` for keystrokes when `recordInput`, and
/// `[seconds, "r", "COLSxROWS"]` for resizes.
///
/// The gateway creates one when it relays a `shell` stream, with the stream's parameters, sets
/// the relay's `tap` to `feed`, and calls `finish()` when the relay ends; the returned SHA-256
/// (of the file's bytes, computed as they are written) and size go into the audit record.
///
/// It decodes each direction's frames with its own decoder, keeps a UTF-8 sequence split across
/// frames until it is complete (what stays invalid becomes U+FFFD), and writes each fed chunk's
/// events with one write(2). The file is created 0600 and never overwritten, its directory is
/// synced once it exists, and the file is synced at least every `syncIntervalNanoseconds`
/// while the session is active and at `finish`, so a crash loses at most about a second.
/// Loop-confined, like the relay that feeds it.
public final class ShellRecorder {
    /// How much recorded activity a crash of the gateway host may lose.
    public static let syncIntervalNanoseconds: UInt64 = 1_000_000_000

    public let path: String
    private var descriptor: Int32
    private let recordInput: Bool
    private let clock: RecordingClock
    private let startedAt: UInt64
    private var lastSync: UInt64
    private var towardsNode = ShellFrameDecoder(direction: .toNode)
    private var towardsOperator = ShellFrameDecoder(direction: .toOperator)
    /// The start of a UTF-8 sequence split across frames, per event kind.
    private var pendingOutput: [UInt8] = []
    private var pendingInput: [UInt8] = []
    private let hash = SHA256Stream()
    private var byteCount = 0
    /// Events of one fed chunk, written together.
    private var lines: [UInt8] = []

    /// The first framing error seen in either direction (the relay's ends reset such a stream):
    /// events stop there, and the file stays a valid recording of everything before.
    public private(set) var framingFailure: Failure?
    /// Set when writing or syncing failed: the recording is incomplete from there on, and
    /// `finish` throws it. A gateway that must not run unrecorded shells cuts the stream then.
    public private(set) var writeFailure: ShellRecordingError?

    /// Creates the file at `path` (it must not exist) and writes the header with the terminal
    /// type and size the operator opened the stream with, and the command if one was asked for.
    public init(path: String, parameters: ShellParameters, recordInput: Bool, clock: RecordingClock = .system)
        throws(ShellRecordingError)
    {
        self.path = path
        self.recordInput = recordInput
        self.clock = clock
        descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Self.error("cannot create the recording", path) }
        startedAt = clock.monotonicNanoseconds()
        lastSync = startedAt
        lines.append(
            contentsOf:
                "{\"version\": 2, \"width\": \(parameters.columns), \"height\": \(parameters.rows), \"timestamp\": \(clock.unixSeconds()), \"env\": {\"TERM\": "
                .utf8)
        Self.appendJSONString(parameters.term.utf8, to: &lines)
        lines.append(contentsOf: "}".utf8)
        if let command = parameters.command {
            lines.append(contentsOf: ", \"command\": ".utf8)
            Self.appendJSONString(command.utf8, to: &lines)
        }
        lines.append(contentsOf: "}\n".utf8)
        writeLines()
        syncDirectory()
        if let writeFailure {
            close(descriptor)
            descriptor = -1
            throw writeFailure
        }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Records relayed bytes: `.fromFirst` is the operator's side (keystrokes, resizes),
    /// `.fromSecond` the node's (output, exit). Does not keep `bytes`.
    public func feed(_ bytes: ArraySlice<UInt8>, direction: StreamRelay.Direction) {
        guard framingFailure == nil, writeFailure == nil, descriptor >= 0 else { return }
        let now = clock.monotonicNanoseconds()
        let time = Self.seconds(now &- startedAt)
        do throws(Failure) {
            switch direction {
            case .fromFirst:
                towardsNode.append(bytes)
                while let frame = try towardsNode.next() {
                    record(frame, pending: &pendingInput, dataKind: recordInput ? "i" : nil, time: time)
                }
            case .fromSecond:
                towardsOperator.append(bytes)
                while let frame = try towardsOperator.next() {
                    record(frame, pending: &pendingOutput, dataKind: "o", time: time)
                }
            }
        } catch {
            framingFailure = error
        }
        writeLines()
        if now &- lastSync >= Self.syncIntervalNanoseconds {
            lastSync = now
            sync()
        }
    }

    /// Writes what is left of a split UTF-8 sequence, syncs and closes the file. Returns the
    /// SHA-256 (lowercase hex) and size of the file as written; throws `writeFailure` if any.
    public func finish() throws(ShellRecordingError) -> (sha256: String, bytes: Int) {
        precondition(descriptor >= 0, "ShellRecorder.finish called twice")
        if writeFailure == nil {
            let time = Self.seconds(clock.monotonicNanoseconds() &- startedAt)
            appendEvent(kind: "i", text: String(decoding: pendingInput, as: UTF8.self), time: time)
            appendEvent(kind: "o", text: String(decoding: pendingOutput, as: UTF8.self), time: time)
            pendingInput = []
            pendingOutput = []
            writeLines()
            sync()
        }
        close(descriptor)
        descriptor = -1
        let digest = Hex.encode(hash.finish())
        if let writeFailure { throw writeFailure }
        return (digest, byteCount)
    }

    /// `dataKind` is the event type of data frames, nil when they are not recorded.
    private func record(_ frame: ShellFrame, pending: inout [UInt8], dataKind: String?, time: String) {
        switch frame {
        case .data(let bytes):
            guard let dataKind else { return }
            appendEvent(kind: dataKind, text: Self.decodeUTF8(bytes, pending: &pending), time: time)
        case .resize(let columns, let rows):
            appendEvent(kind: "r", text: "\(columns)x\(rows)", time: time)
        case .exit:
            break // asciicast v2 has no exit event; the audit record carries the status
        }
    }

    private func appendEvent(kind: String, text: String, time: String) {
        guard !text.isEmpty else { return }
        lines.append(contentsOf: "[\(time), \"\(kind)\", ".utf8)
        Self.appendJSONString(text.utf8, to: &lines)
        lines.append(contentsOf: "]\n".utf8)
    }

    // MARK: - The file

    private func writeLines() {
        defer { lines.removeAll(keepingCapacity: true) }
        guard writeFailure == nil, !lines.isEmpty else { return }
        lines.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    writeFailure = Self.error("cannot write the recording", path)
                    break
                }
                hash.update(UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + written)]))
                byteCount += written
                offset += written
            }
        }
    }

    private func sync() {
        guard writeFailure == nil else { return }
        if fsync(descriptor) != 0 { writeFailure = Self.error("cannot sync the recording", path) }
    }

    /// Makes the new file's directory entry durable, as the audit record that names it is.
    private func syncDirectory() {
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        do { try DurableFile.syncDirectory(directory.isEmpty ? "/" : directory) } catch {
            writeFailure = ShellRecordingError("cannot make the recording durable: \(error.message)")
        }
    }

    private static func error(_ what: String, _ path: String) -> ShellRecordingError {
        ShellRecordingError("\(what) \(path): \(String(cString: strerror(errno)))")
    }

    // MARK: - Encoding

    /// Seconds with microseconds, as asciinema writes them.
    static func seconds(_ nanoseconds: UInt64) -> String {
        let micros = nanoseconds / 1_000
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }

    /// Decodes `pending` followed by `bytes`, keeping back a UTF-8 sequence cut off at the end.
    static func decodeUTF8(_ bytes: ArraySlice<UInt8>, pending: inout [UInt8]) -> String {
        var all = pending
        all.append(contentsOf: bytes)
        let kept = incompleteSuffixLength(all)
        pending = Array(all.suffix(kept))
        return String(decoding: all.dropLast(kept), as: UTF8.self)
    }

    /// How many bytes at the end of `bytes` begin a UTF-8 sequence that needs more bytes.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        guard !bytes.isEmpty else { return 0 }
        for length in 1...min(3, bytes.count) {
            let byte = bytes[bytes.count - length]
            if byte & 0xC0 == 0x80 { continue } // a continuation byte: look further back
            let needed =
                switch byte {
                case 0xC2...0xDF: 2
                case 0xE0...0xEF: 3
                case 0xF0...0xF4: 4
                default: 1
                }
            return needed > length ? length : 0
        }
        return 0
    }

    /// A JSON string of valid UTF-8: quotes, backslashes and every control character escaped
    /// (terminal output is full of ESC, CR and BEL), everything else as it is.
    static func appendJSONString(_ text: String.UTF8View, to out: inout [UInt8]) {
        let hexDigits = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in text {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): out.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): out.append(contentsOf: #"\t"#.utf8)
            case 0x00..<0x20, 0x7F:
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
