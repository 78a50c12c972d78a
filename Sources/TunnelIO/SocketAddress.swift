internal import CLibUV

/// An IPv4 or IPv6 socket address. Prints as `127.0.0.1:7443` or `[::1]:7443`,
/// the same form `Resolver.parse` accepts.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    var storage: sockaddr_storage

    init(storage: sockaddr_storage) {
        self.storage = storage
    }

    /// Creates an address from a numeric IP (no DNS). Use `Resolver` for names.
    public init(ip: String, port: UInt16) throws(IOError) {
        var storage = sockaddr_storage()
        let status = tunnel_sockaddr_from_ip(ip, Int32(port), &storage)
        if status != 0 {
            throw IOError(
                code: status, operation: "parse address", address: ip,
                detail: "not a numeric IPv4 or IPv6 address")
        }
        self.storage = storage
    }

    public var port: UInt16 {
        withUnsafePointer(to: storage) { UInt16(tunnel_sockaddr_port($0)) }
    }

    public var isIPv6: Bool {
        withUnsafePointer(to: storage) { tunnel_sockaddr_is_ipv6($0) != 0 }
    }

    /// The numeric host without port or brackets, for example `::1`.
    public var ip: String {
        withUnsafePointer(to: storage) { address in
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
                buffer.initialize(repeating: 0)
                _ = tunnel_sockaddr_ip(address, buffer.baseAddress, buffer.count)
                return String(cString: buffer.baseAddress!)
            }
        }
    }

    public var description: String {
        isIPv6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    public static func == (lhs: SocketAddress, rhs: SocketAddress) -> Bool {
        lhs.description == rhs.description
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(description)
    }
}
