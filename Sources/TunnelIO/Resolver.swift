internal import CLibUV

/// One asynchronous `host:port` lookup (`uv_getaddrinfo`, run on libuv's
/// thread pool, completed on the loop thread). Keeps itself alive until done.
public final class Resolver {
    /// Held so the loop outlives the request libuv still tracks.
    private let loop: EventLoop
    private let request: UnsafeMutablePointer<uv_getaddrinfo_t>
    private let input: String
    private var completion: ((Result<[SocketAddress], IOError>) -> Void)?

    private init(loop: EventLoop, input: String, completion: @escaping (Result<[SocketAddress], IOError>) -> Void) {
        self.loop = loop
        self.request = .allocate(capacity: 1)
        self.input = input
        self.completion = completion
    }

    /// Resolves `hostPort` (`gateway.example:7443`, `10.0.0.5:7443`,
    /// `[::1]:7443`) to TCP addresses in the resolver's preferred order,
    /// without duplicates. Throws at once if the text is malformed; otherwise
    /// `completion` runs exactly once on the loop, unless `cancel()` is called.
    @discardableResult
    public static func resolve(
        _ hostPort: String,
        loop: EventLoop,
        _ completion: @escaping (Result<[SocketAddress], IOError>) -> Void
    ) throws(IOError) -> Resolver {
        let (host, port) = try parse(hostPort)
        let resolver = Resolver(loop: loop, input: hostPort, completion: completion)
        resolver.request.pointee.data = Unmanaged.passRetained(resolver).toOpaque()
        let status = tunnel_uv_getaddrinfo_tcp(
            loop.loop, resolver.request,
            { request, status, results in
                let resolver = Unmanaged<Resolver>.fromOpaque(request!.pointee.data).takeRetainedValue()
                resolver.finish(status: status, results: results)
                uv_freeaddrinfo(results)
                request!.deallocate()
            }, host, String(port))
        if status != 0 {
            Unmanaged.passUnretained(resolver).release()
            resolver.request.deallocate()
            throw IOError(code: status, operation: "resolve", address: hostPort)
        }
        return resolver
    }

    /// Abandons the lookup: `completion` will not run. The lookup may still
    /// finish in the thread pool; libuv then frees it on the loop.
    public func cancel() {
        guard completion != nil else { return }
        completion = nil
        uv_cancel(tunnel_uv_getaddrinfo_as_req(request))
    }

    private func finish(status: Int32, results: UnsafeMutablePointer<addrinfo>?) {
        guard let completion else { return }
        self.completion = nil
        guard status == 0 else {
            completion(.failure(IOError(code: status, operation: "resolve", address: input)))
            return
        }
        var addresses: [SocketAddress] = []
        var entry = results
        while let current = entry {
            var storage = sockaddr_storage()
            if let address = current.pointee.ai_addr, tunnel_sockaddr_copy(address, &storage) == 0 {
                let resolved = SocketAddress(storage: storage)
                if !addresses.contains(resolved) { addresses.append(resolved) }
            }
            entry = current.pointee.ai_next
        }
        completion(.success(addresses))
    }

    /// Splits `host:port`; IPv6 literals need brackets (`[::1]:7443`).
    /// Errors name the input and say what form was expected.
    public static func parse(_ hostPort: String) throws(IOError) -> (host: String, port: UInt16) {
        func invalid(_ why: String) -> IOError {
            IOError(UV_EINVAL, operation: "resolve", address: "\"\(hostPort)\"", detail: why)
        }
        let host: Substring
        let portText: Substring
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw invalid("missing ']' after the IPv6 address; expected [address]:port")
            }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let rest = hostPort[hostPort.index(after: close)...]
            guard rest.first == ":" else {
                throw invalid("expected ':port' after ']', as in [::1]:7443")
            }
            portText = rest.dropFirst()
        } else {
            guard let colon = hostPort.lastIndex(of: ":") else {
                throw invalid("expected host:port, as in gateway.example:7443 or [::1]:7443")
            }
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
            if host.contains(":") {
                throw invalid("an IPv6 address needs brackets, as in [::1]:7443")
            }
        }
        guard !host.isEmpty else {
            throw invalid("the host is empty; expected host:port")
        }
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = UInt16(portText)
        else {
            throw invalid("the port must be a number from 0 to 65535")
        }
        return (String(host), port)
    }
}

@available(*, unavailable, message: "Resolver is confined to its loop's thread")
extension Resolver: Sendable {}
