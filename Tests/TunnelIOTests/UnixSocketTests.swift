import Glibc
import Testing
import TunnelIO

/// Where a call must throw, the test closes whatever it returns anyway, so a regression fails
/// the test instead of leaving a handle open that keeps the loop running.
@Suite struct UnixSocketTests {
    @Test func echoesAndReportsThePeersCredentials() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let path = directory.file("admin.sock")
        let harness = try LoopHarness()
        let loop = harness.loop
        let me = (pid: getpid(), uid: getuid(), gid: getgid())
        var serverSawPeer: (pid: Int32, uid: UInt32, gid: UInt32)?
        var clientSawPeer: (pid: Int32, uid: UInt32, gid: UInt32)?
        var echoed: [UInt8] = []

        let listener = try UnixListener(loop: loop, path: path) { result in
            guard case .success(let server) = result else {
                Issue.record("accept failed: \(result)")
                return
            }
            serverSawPeer = try? server.peerCredentials()
            try? server.startReading { event in
                switch event {
                case .data(let bytes):
                    do { try server.write(bytes) } catch { Issue.record("echo write failed: \(error)") }
                case .end:
                    try? server.shutdown { _ in server.close() }
                case .error(let error):
                    Issue.record("server read failed: \(error)")
                    server.close()
                }
            }
        }
        var client: StreamConnection?
        client = try StreamConnection.connect(loop: loop, unixPath: path, timeoutMilliseconds: 5_000) { result in
            guard let connection = client else { return }
            do {
                try result.get()
                clientSawPeer = try connection.peerCredentials()
                try connection.write(Array("ping".utf8))
                try connection.shutdown()
            } catch {
                Issue.record("\(error)")
                connection.close()
                listener.close()
                harness.finish()
            }
        }
        try client?.startReading { event in
            switch event {
            case .data(let bytes):
                echoed += bytes
            case .end, .error:
                if case .error(let error) = event { Issue.record("client read failed: \(error)") }
                client?.close()
                listener.close()
                harness.finish()
            }
        }
        harness.run()
        #expect(echoed == Array("ping".utf8))
        #expect(serverSawPeer?.pid == me.pid)
        #expect(serverSawPeer?.uid == me.uid)
        #expect(serverSawPeer?.gid == me.gid)
        #expect(clientSawPeer?.pid == me.pid)
        #expect(clientSawPeer?.uid == me.uid)
    }

    @Test func socketFileGetsTheRequestedModeAndTheUmaskIsRestored() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let harness = try LoopHarness()
        let umaskBefore = umask(0o022)
        umask(umaskBefore)
        let restricted = try UnixListener(loop: harness.loop, path: directory.file("default.sock")) { _ in }
        let shared = try UnixListener(loop: harness.loop, path: directory.file("group.sock"), mode: 0o660) { _ in }
        let umaskAfter = umask(0o022)
        umask(umaskAfter)
        #expect(fileMode(restricted.path) == S_IFSOCK | 0o600)
        #expect(fileMode(shared.path) == S_IFSOCK | 0o660)
        #expect(umaskAfter == umaskBefore)
        restricted.close()
        shared.close()
        harness.finish()
        harness.run()
    }

    @Test func staleSocketFileIsReplaced() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let path = directory.file("admin.sock")
        try leaveStaleSocket(at: path)
        let harness = try LoopHarness()
        let loop = harness.loop
        let listener = try UnixListener(loop: loop, path: path) { result in
            if case .success(let server) = result { server.close() }
        }
        var connected = false
        var client: StreamConnection?
        client = try StreamConnection.connect(loop: loop, unixPath: path, timeoutMilliseconds: 5_000) { result in
            connected = (try? result.get()) != nil
            client?.close()
            listener.close()
            harness.finish()
        }
        harness.run()
        #expect(connected)
    }

    @Test func regularFileIsRefusedAndLeftUntouched() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let path = directory.file("admin.sock")
        let contents = Array("not a socket\n".utf8)
        try writeFile(path, contents)
        let harness = try LoopHarness()
        #expect {
            try UnixListener(loop: harness.loop, path: path) { _ in }.close()
        } throws: { error in
            (error as? IOError)?.name == "EEXIST" && "\(error)".contains(path) && "\(error)".contains("not a socket")
        }
        #expect(try readFile(path) == contents)
        harness.finish()
        harness.run()
    }

    @Test func liveListenerIsNotReplaced() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let path = directory.file("admin.sock")
        let harness = try LoopHarness()
        let loop = harness.loop
        // Accepts the second listener's probe and the client below, and closes both.
        let first = try UnixListener(loop: loop, path: path) { result in
            if case .success(let server) = result { server.close() }
        }
        #expect {
            try UnixListener(loop: loop, path: path) { _ in }.close()
        } throws: { error in
            (error as? IOError)?.name == "EADDRINUSE" && "\(error)".contains(path)
                && "\(error)".contains("already listening")
        }
        // The refused listener must not have removed the first one's socket file.
        var connected = false
        var client: StreamConnection?
        client = try StreamConnection.connect(loop: loop, unixPath: path, timeoutMilliseconds: 5_000) { result in
            connected = (try? result.get()) != nil
            client?.close()
            first.close()
            harness.finish()
        }
        harness.run()
        #expect(connected)
    }

    @Test func closeRemovesTheSocketFile() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let path = directory.file("admin.sock")
        let harness = try LoopHarness()
        let listener = try UnixListener(loop: harness.loop, path: path) { _ in }
        #expect(fileMode(path) != nil)
        listener.close()
        #expect(fileMode(path) == nil)
        harness.finish()
        harness.run()
    }

    @Test func connectToAMissingPathNamesIt() throws {
        let directory = try ScratchDirectory()
        defer { directory.remove() }
        let path = directory.file("missing.sock")
        let harness = try LoopHarness()
        var failure: IOError?
        let client = try StreamConnection.connect(loop: harness.loop, unixPath: path, timeoutMilliseconds: 5_000) {
            result in
            if case .failure(let error) = result { failure = error }
            harness.finish()
        }
        harness.run()
        let error = try #require(failure)
        #expect(error.name == "ENOENT")
        #expect(error.operation == "connect")
        #expect(error.address == path)
        #expect("\(error)".contains(path))
        #expect(client.isClosed)
    }

    /// libuv 1.44 would silently truncate such a path and bind or connect elsewhere.
    @Test func pathLongerThanSunPathIsRefused() throws {
        let harness = try LoopHarness()
        let path = "/tmp/" + String(repeating: "x", count: 120)
        #expect {
            try UnixListener(loop: harness.loop, path: path) { _ in }.close()
        } throws: { error in
            (error as? IOError)?.name == "ENAMETOOLONG"
        }
        #expect {
            try StreamConnection.connect(loop: harness.loop, unixPath: path, timeoutMilliseconds: 5_000) { _ in
                Issue.record("completion ran for a connect that never started")
            }.close()
        } throws: { error in
            (error as? IOError)?.name == "ENAMETOOLONG" && "\(error)".contains(path)
        }
        #expect(fileMode(String(path.prefix(107))) == nil)
        harness.finish()
        harness.run()
    }

    @Test func tcpConnectionsHaveNoPeerCredentials() throws {
        let harness = try LoopHarness()
        let loop = harness.loop
        let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { result in
            if case .success(let server) = result { server.close() }
        }
        var client: StreamConnection?
        client = try StreamConnection.connect(loop: loop, to: listener.localAddress) { result in
            guard let connection = client else { return }
            #expect {
                try connection.peerCredentials()
            } throws: { error in
                (error as? IOError)?.name == "EAFNOSUPPORT" && "\(error)".contains("Unix domain socket")
            }
            connection.close()
            listener.close()
            harness.finish()
        }
        harness.run()
    }
}

/// A fresh directory under /tmp (short, so socket paths fit `sun_path`), removed at the end
/// with the files the test named through `file(_:)`.
private final class ScratchDirectory {
    let path: String
    private var names: [String] = []

    init() throws {
        var template = Array("/tmp/tunnel-io-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
        try #require(created)
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func file(_ name: String) -> String {
        names.append(name)
        return path + "/" + name
    }

    func remove() {
        for name in names { unlink(path + "/" + name) }
        #expect(rmdir(path) == 0, "scratch directory \(path) not empty")
    }
}

/// The file type and permission bits at `path` (not following a symlink), or nil if nothing is there.
private func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    return lstat(path, &info) == 0 ? info.st_mode : nil
}

/// Leaves a socket file at `path` as a crashed process would: bound, then closed without unlinking.
private func leaveStaleSocket(at path: String) throws {
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    try #require(descriptor >= 0)
    defer { Glibc.close(descriptor) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    try #require(bytes.count < MemoryLayout.size(ofValue: address.sun_path))
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    let status = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    try #require(status == 0)
    try #require(fileMode(path).map { $0 & S_IFMT } == S_IFSOCK)
}

private func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    try #require(descriptor >= 0)
    defer { Glibc.close(descriptor) }
    try #require(write(descriptor, bytes, bytes.count) == bytes.count)
}

private func readFile(_ path: String) throws -> [UInt8] {
    let descriptor = open(path, O_RDONLY)
    try #require(descriptor >= 0)
    defer { Glibc.close(descriptor) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = read(descriptor, &buffer, buffer.count)
    try #require(count >= 0)
    return Array(buffer[..<count])
}
