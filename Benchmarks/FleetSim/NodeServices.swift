import Multiplex
import TunnelRuntime

/// The node's `echo` service: every byte back, FIN after the last one. Credit for what arrived is
/// returned only once the echo is queued below the send buffer's limit, so a slow reader slows
/// the writer end to end, as a real service behind a splice would.
final class EchoService: StreamHandler {
    private let connection: MuxConnection
    private let stream: StreamID
    private let stats: FleetStats
    /// Bytes echoed but not yet given back as credit, waiting for `streamWritable`.
    private var held = 0

    init(connection: MuxConnection, stream: StreamID, stats: FleetStats) {
        self.connection = connection
        self.stream = stream
        self.stats = stats
    }

    func streamReceived(_ bytes: ArraySlice<UInt8>) {
        do {
            if try connection.write(bytes, on: stream) {
                connection.consumed(bytes.count, on: stream)
            } else {
                held += bytes.count
            }
        } catch {
            stats.error("node echo write failed: \(error)")
            connection.reset(stream, code: .internalError)
        }
    }

    func streamWritable() {
        guard held > 0 else { return }
        connection.consumed(held, on: stream)
        held = 0
    }

    func streamFinished() {
        connection.finish(stream)
        stats.update { $0.servedCleanly += 1 }
    }

    func streamReset(_ failure: Failure) {}
}

/// The node's `sink` service: reads everything, and after the FIN answers with the count and
/// hash of what arrived (`SinkDigest`), then finishes.
final class SinkService: StreamHandler {
    private let connection: MuxConnection
    private let stream: StreamID
    private let stats: FleetStats
    private var digest = SinkDigest()

    init(connection: MuxConnection, stream: StreamID, stats: FleetStats) {
        self.connection = connection
        self.stream = stream
        self.stats = stats
    }

    func streamReceived(_ bytes: ArraySlice<UInt8>) {
        digest.add(bytes)
        connection.consumed(bytes.count, on: stream)
    }

    func streamFinished() {
        do {
            _ = try connection.write(digest.encoded[...], on: stream)
            connection.finish(stream)
            stats.update { $0.servedCleanly += 1 }
        } catch {
            stats.error("node sink reply failed: \(error)")
            connection.reset(stream, code: .internalError)
        }
    }

    func streamWritable() {}
    func streamReset(_ failure: Failure) {}
}
