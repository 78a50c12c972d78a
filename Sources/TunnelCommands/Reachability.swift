import Foundation
import Glibc

/// Whether something accepts TCP connections at an address: for `tunnel doctor` and for
/// `tunnel dev`, which must know before it starts whether a port is taken or a service is there.
/// Blocking, with a short timeout: both run before any loop does.
enum Reachability {
    static let timeoutMilliseconds: Int32 = 3_000

    /// nil when a connection to `address` (each of its resolved addresses in turn) succeeds;
    /// otherwise why none did, as a short phrase ("connection refused").
    static func problem(_ address: HostPort, timeoutMilliseconds: Int32 = timeoutMilliseconds) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(address.host, String(address.port), &hints, &list)
        guard status == 0, let list else {
            return "cannot resolve \(address.host): \(String(cString: gai_strerror(status)))"
        }
        defer { freeaddrinfo(list) }
        var lastProblem = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            guard let problem = connectProblem(current.pointee, timeoutMilliseconds: timeoutMilliseconds) else {
                return nil
            }
            lastProblem = problem
            entry = current.pointee.ai_next
        }
        return lastProblem
    }

    private static func connectProblem(_ info: addrinfo, timeoutMilliseconds: Int32) -> String? {
        let descriptor = socket(
            info.ai_family, info.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
            info.ai_protocol)
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        defer { close(descriptor) }
        if connect(descriptor, info.ai_addr, info.ai_addrlen) == 0 { return nil }
        guard errno == EINPROGRESS else { return String(cString: strerror(errno)).lowercased() }
        var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) == 1 else {
            return "timed out connecting after \(timeoutMilliseconds / 1000) s"
        }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else {
            return String(cString: strerror(errno)).lowercased()
        }
        return error == 0 ? nil : String(cString: strerror(error)).lowercased()
    }
}
