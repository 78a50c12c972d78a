import Foundation

/// A throwaway PostgreSQL server for tests, from Debian's own binaries.
///
/// `initdb` in a fresh temporary directory, `pg_ctl start` listening only on 127.0.0.1 at a
/// free port with trust authentication (nothing else can reach it), one fresh database per
/// test. PostgreSQL refuses to run as root, so under root it runs as Debian's `postgres` user.
/// The process-wide server starts on first use and is stopped by its PID when the test process
/// exits. Where no binaries are installed, tests get `unavailable`; under `CI=true` that is an
/// error, so a CI machine without PostgreSQL fails loudly instead of passing silently.
public final class PostgresTestServer: @unchecked Sendable {
    // @unchecked Sendable: every mutable field is touched only under `lock`.
    public let port: Int
    public let directory: String
    private let lock = NSLock()
    private var databaseCount = 0

    /// Why there is no server, or nil if `shared` can be used.
    public static let unavailable: String? = {
        guard binaryDirectory != nil else {
            return
                "no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH; run scripts/setup.sh"
        }
        return nil
    }()

    /// True when the Postgres tests must run (binaries present, or in CI where their absence is an error).
    public static var shouldRun: Bool {
        unavailable == nil || ProcessInfo.processInfo.environment["CI"] == "true"
    }

    /// The server shared by every test in this process, started on first use.
    public static func shared() throws -> PostgresTestServer {
        try sharedServer.get()
    }

    private static let sharedServer: Result<PostgresTestServer, Error> = Result {
        let server = try PostgresTestServer()
        stopAtExit = server
        atexit { PostgresTestServer.stopAtExit?.stop() }
        return server
    }

    // nonisolated(unsafe): written once before atexit registers the handler that reads it.
    nonisolated(unsafe) private static var stopAtExit: PostgresTestServer?

    /// The name of a new, empty database on this server.
    public func freshDatabase() throws -> String {
        let name = lock.withLock {
            databaseCount += 1
            return "tunnel_test_\(databaseCount)"
        }
        try execute("CREATE DATABASE \(name)", database: "postgres")
        return name
    }

    /// Runs `sql` in `database` with psql, as the test's superuser.
    public func execute(_ sql: String, database: String) throws {
        try Self.run(
            in: directory, Self.binary("psql"),
            [
                "-h", "127.0.0.1", "-p", "\(port)", "-U", "tunnel", "-d", database, "-q", "-v", "ON_ERROR_STOP=1", "-c",
                sql,
            ])
    }

    /// The URL of `database` on this server, as user `tunnel`.
    public func url(database: String) -> String {
        "postgres://tunnel@127.0.0.1:\(port)/\(database)"
    }

    private init() throws {
        if let reason = Self.unavailable { throw TestServerError(reason) }
        directory = NSTemporaryDirectory() + "tunnel-postgres-" + UUID().uuidString
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        if getuid() == 0 {
            guard let account = getpwnam("postgres") else {
                throw TestServerError(
                    "running as root and there is no postgres user to run the server as; install Debian's postgresql package"
                )
            }
            guard chown(directory, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                throw TestServerError("cannot give \(directory) to the postgres user (errno \(errno))")
            }
        }
        try Self.runAsServerUser(
            in: directory, "initdb",
            ["-D", directory + "/data", "-U", "tunnel", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
        var lastError: Error?
        // A port found free may be taken before the server binds it; a few tries settle that.
        for _ in 0..<5 {
            let candidate = try Self.freePort()
            do {
                try Self.runAsServerUser(
                    in: directory, "pg_ctl",
                    [
                        "start", "-w", "-t", "30", "-D", directory + "/data", "-l", directory + "/server.log",
                        "-o",
                        "-p \(candidate) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
                    ])
                port = candidate
                return
            } catch {
                lastError = error
            }
        }
        throw lastError ?? TestServerError("the server did not start")
    }

    /// Stops the server by the PID in postmaster.pid (fast shutdown) and removes its directory.
    public func stop() {
        if let text = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8),
            let pid = text.split(separator: "\n").first.flatMap({ pid_t($0) }), pid > 0
        {
            kill(pid, SIGINT)
            // Bounded: fast shutdown takes well under a second; give up after 10 s.
            for _ in 0..<200 where kill(pid, 0) == 0 {
                usleep(50_000)
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func runAsServerUser(in directory: String, _ name: String, _ arguments: [String]) throws {
        let path = try binary(name)
        if getuid() == 0 {
            try run(in: directory, "/usr/sbin/runuser", ["-u", "postgres", "--", path] + arguments)
        } else {
            try run(in: directory, path, arguments)
        }
    }

    private static func binary(_ name: String) throws -> String {
        guard let directory = binaryDirectory else { throw TestServerError(unavailable ?? "no PostgreSQL binaries") }
        return directory + "/" + name
    }

    /// Debian keeps the server binaries in /usr/lib/postgresql/VERSION/bin, off PATH.
    private static let binaryDirectory: String? = {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: >)
        where FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\(version)/bin/initdb") {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":")
        where FileManager.default.isExecutableFile(atPath: "\(directory)/initdb") {
            return String(directory)
        }
        return nil
    }()

    /// Runs `path` with `arguments` and waits for it; a non-zero exit is an error with its output.
    ///
    /// posix_spawn and waitpid rather than Foundation's Process, whose exit monitoring did not
    /// reap the child here. A shell sends the output to a file, not a pipe: the server that
    /// pg_ctl starts would inherit a pipe and hold it open.
    private static func run(in directory: String, _ path: String, _ arguments: [String]) throws {
        let outputPath = directory + "/command-\(UUID().uuidString).out"
        defer { unlink(outputPath) }
        let script = #"log=$1; shift; exec "$@" </dev/null >"$log" 2>&1"#
        let argv = (["/bin/sh", "-c", script, "sh", outputPath, path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
        guard spawned == 0 else { throw TestServerError("cannot run \(path) (errno \(spawned))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status != 0 else { return }
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        throw TestServerError(
            "\((path as NSString).lastPathComponent) \(arguments.joined(separator: " ")) failed (wait status \(status)): \(text)"
        )
    }

    /// A loopback TCP port nobody listens on right now.
    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestServerError("socket() failed (errno \(errno))") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else { throw TestServerError("cannot find a free loopback port (errno \(errno))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Why the test server could not be set up, in one sentence.
public struct TestServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
