import TunnelText

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a textual value was refused; the caller prefixes the source (`file:line: key:`,
/// `TUNNEL_X:` or `--x:`) to make the one-line message.
public struct ValueProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public init(_ text: String) { self.text = text }
    public var description: String { text }
}

/// A `host:port` pair: a DNS name, an IPv4 address or a bracketed IPv6 address, and a port 1–65535.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// The host without brackets (`::1`, `10.0.0.1`, `gw.example.com`).
    public let host: String
    public let port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// True when `host` is an IPv6 literal (it is shown in brackets).
    public var isIPv6: Bool { host.contains(":") }

    /// True when `host` is an IP literal rather than a name.
    public var isIPAddress: Bool { isIPv6 || HostPort.isIPv4(host) }

    /// `host:port`, with brackets around IPv6 addresses.
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `host:port`, `1.2.3.4:7443` or `[::1]:7443`.
    ///
    /// Every refusal starts with `"TEXT" is not HOST:PORT` and ends with an example of what
    /// would be accepted. `example` is used when no better one can be built from the input.
    /// `allowAnyPort` accepts port 0, "any free port", for local listeners such as `tunnel forward`.
    public static func parse(_ text: String, example: String = "gateway.example.com:7443", allowAnyPort: Bool = false)
        throws(ValueProblem) -> HostPort
    {
        func refuse(_ reason: String? = nil, example: String) -> ValueProblem {
            ValueProblem("\"\(text)\" is not HOST:PORT" + (reason.map { ": \($0)" } ?? "") + " (e.g. \(example))")
        }
        if let range = text.firstRange(of: "://") {
            let rest = String(text[range.upperBound...])
            throw refuse("drop the \"\(text[..<range.upperBound])\"", example: rest.isEmpty ? example : rest)
        }
        let hostPart: Substring
        let portPart: Substring
        var bracketed = false
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw refuse("missing \"]\" after the IPv6 address", example: "[::1]:7443")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":"), after.count > 1 else {
                throw refuse("the port is missing", example: "[\(hostPart)]:7443")
            }
            portPart = after.dropFirst()
            bracketed = true
        } else {
            let colons = text.filter { $0 == ":" }.count
            if colons == 0 {
                if !text.isEmpty, isValidHost(text) { throw refuse(example: "\(text):7443") }
                throw refuse(example: example)
            }
            if colons > 1 {
                throw refuse("put IPv6 addresses in brackets", example: "[::1]:7443")
            }
            let colon = text.firstIndex(of: ":")!
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty else {
            throw refuse(
                "the host is missing; to listen on every address use 0.0.0.0",
                example: "0.0.0.0\(portPart.isEmpty ? ":7443" : ":" + portPart)")
        }
        let host = String(hostPart)
        if bracketed {
            guard isIPv6(host) else { throw refuse("\"\(host)\" is not an IPv6 address", example: "[::1]:7443") }
        } else {
            guard isValidHost(host) else {
                throw refuse("\"\(host)\" is not a host name or IPv4 address", example: example)
            }
        }
        guard !portPart.isEmpty else { throw refuse("the port is missing", example: "\(hostPart):7443") }
        guard portPart.allSatisfy({ $0.isASCII && $0.isNumber }), portPart.count <= 5,
            let port = Int(portPart), ((allowAnyPort ? 0 : 1)...65535).contains(port)
        else {
            throw refuse(
                "the port must be a number from \(allowAnyPort ? 0 : 1) to 65535",
                example: bracketed ? "[\(host)]:7443" : "\(host):7443")
        }
        return HostPort(host: host, port: UInt16(port))
    }

    /// A DNS name (letters, digits, '-', dots between labels) or an IPv4 address.
    package static func isValidHost(_ host: String) -> Bool {
        if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) { return isIPv4(host) }
        return DNSName.isValid(host)
    }

    package static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    package static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }
}

/// Durations written as a number and a unit, several allowed: `500ms`, `30s`, `15m`, `24h`, `7d`, `1h30m`.
public enum DurationText {
    /// Parses a positive duration. A bare number is refused, because "30" could mean seconds or minutes.
    public static func parse(_ text: String) throws(ValueProblem) -> Duration {
        let hint = "use a number and a unit: ms, s, m, h or d (e.g. 30s, 15m, 24h)"
        guard !text.isEmpty else { throw ValueProblem("\"\" is not a duration; \(hint)") }
        var milliseconds: Int64 = 0
        var index = text.startIndex
        while index < text.endIndex {
            let digitsStart = index
            while index < text.endIndex, text[index].isASCII, text[index].isNumber { index = text.index(after: index) }
            guard digitsStart < index, let number = Int64(text[digitsStart..<index]) else {
                throw ValueProblem("\"\(text)\" is not a duration; \(hint)")
            }
            let unitStart = index
            while index < text.endIndex, text[index].isASCII, text[index].isLetter { index = text.index(after: index) }
            let factor: Int64
            switch text[unitStart..<index] {
            case "ms": factor = 1
            case "s": factor = 1000
            case "m": factor = 60_000
            case "h": factor = 3_600_000
            case "d": factor = 86_400_000
            case "": throw ValueProblem("\"\(text)\" is not a duration: the unit is missing; \(hint)")
            default:
                throw ValueProblem(
                    "\"\(text)\" is not a duration: unknown unit \"\(text[unitStart..<index])\"; \(hint)")
            }
            let (product, overflow1) = number.multipliedReportingOverflow(by: factor)
            let (sum, overflow2) = milliseconds.addingReportingOverflow(product)
            guard !overflow1, !overflow2, sum <= 100 * 365 * 86_400_000 else {
                throw ValueProblem("\"\(text)\" is too long a duration (at most 100 years)")
            }
            milliseconds = sum
        }
        guard milliseconds > 0 else { throw ValueProblem("\"\(text)\" is not a positive duration; \(hint)") }
        return .milliseconds(milliseconds)
    }

    /// Whole seconds in `duration`, rounded down.
    public static func seconds(_ duration: Duration) -> Int64 {
        duration.components.seconds
    }

    /// The shortest exact text for `duration` (`30s`, `15m`, `1h30m`, `1500ms`).
    public static func format(_ duration: Duration) -> String {
        var ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms % 1000 != 0 { return "\(ms)ms" }
        ms /= 1000
        var parts: [String] = []
        for (unit, size) in [("h", Int64(3600)), ("m", 60), ("s", 1)] where ms >= size {
            parts.append("\(ms / size)\(unit)")
            ms %= size
        }
        return parts.isEmpty ? "0s" : parts.joined()
    }
}

extension Names {
    /// `Names.check` for settings and flags: the same rule and sentence, as a `ValueProblem`.
    package static func checked(_ name: String, as kind: NameKind) throws(ValueProblem) -> String {
        do { return try check(name, as: kind) } catch { throw ValueProblem(error.message) }
    }
}

/// "did you mean" support: the closest candidate within a small edit distance.
package enum Suggest {
    package static func closest(to word: String, in candidates: [String]) -> String? {
        let lowered = word.lowercased()
        var best: (String, Int)?
        for candidate in candidates {
            let distance = editDistance(lowered, candidate.lowercased())
            let limit = max(1, min(3, candidate.count / 3))
            if distance <= limit, best == nil || distance < best!.1 { best = (candidate, distance) }
        }
        return best?.0
    }

    package static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// The directory part of a path, as `NSString.deletingLastPathComponent` gives it
/// (`/etc/tunnel/client.yaml` → `/etc/tunnel`, `/x` → `/`, `x` → ``), without Foundation.
package func directoryPart(of path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "" }
    return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
}
