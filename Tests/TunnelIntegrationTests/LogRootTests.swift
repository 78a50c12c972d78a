import Foundation
import Glibc
import Testing
import TunnelClient

/// Issue #9, item 12: a log file is checked against the log root before it is opened, so a
/// symlink to a FIFO or a device outside the root is never opened at all.
@Suite("Log root before open", .serialized)
struct LogRootTests {
    /// Counts opens of `path` with inotify, which sees every open(2) of the file by anyone.
    final class OpenWatch {
        let descriptor: Int32

        init(_ path: String) throws {
            descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            guard descriptor >= 0, inotify_add_watch(descriptor, path, UInt32(IN_OPEN)) >= 0 else {
                throw TestFailure("inotify failed: \(errno)")
            }
        }

        deinit { close(descriptor) }

        var opened: Bool {
            var buffer = [UInt8](repeating: 0, count: 4096)
            return read(descriptor, &buffer, buffer.count) > 0
        }
    }

    @Test("a symlink under the root to a FIFO outside it is refused without being opened")
    func fifoOutsideIsNeverOpened() throws {
        let setup = try LogServiceTests.Setup(["pipe": "pipe.log"])
        defer { setup.tearDown() }
        let fifo = "\(setup.outside)/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        try FileManager.default.createSymbolicLink(atPath: setup.path("pipe.log"), withDestinationPath: fifo)
        let watch = try OpenWatch(fifo)
        guard case .failure(let refusal) = try setup.lines(LogRequest(source: "pipe")) else {
            Issue.record("a FIFO outside the root was served")
            return
        }
        #expect(refusal.message.contains("leads outside the log root"), "\(refusal.message)")
        #expect(!watch.opened)
    }

    @Test("a FIFO inside the root does not hang the node and is refused as not a regular file")
    func fifoInsideIsRefused() throws {
        let setup = try LogServiceTests.Setup(["pipe": "pipe.log"])
        defer { setup.tearDown() }
        #expect(mkfifo(setup.path("pipe.log"), 0o600) == 0)
        guard case .failure(let refusal) = try setup.lines(LogRequest(source: "pipe")) else {
            Issue.record("a FIFO was served")
            return
        }
        #expect(refusal.message.contains("is not a regular file"), "\(refusal.message)")
    }
}
