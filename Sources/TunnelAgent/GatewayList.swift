import TunnelEdgeCore
import TunnelRuntime
import TunnelText

/// `tunnel client --gateway`'s value in the typed settings.
extension Array: SettingConvertible where Element == HostPort {
    public init?(setting: SettingValue) {
        guard case .hostPorts(let list) = setting, !list.isEmpty else { return nil }
        self = list
    }
}

extension HostPort {
    /// Parses `tunnel client --gateway`'s list: one `host:port` or several, comma-separated,
    /// each as `parse` reads it, at most `GatewayRotation.maxReplicas` and none twice.
    public static func parseList(_ text: String, example: String) throws(ValueProblem) -> [HostPort] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingASCIIWhitespace() }
        guard parts.count <= GatewayRotation.maxReplicas else {
            throw ValueProblem(
                "\(parts.count) gateways listed; at most \(GatewayRotation.maxReplicas) (e.g. \(example),gateway-2.example.com:7443)"
            )
        }
        var list: [HostPort] = []
        for part in parts {
            guard !part.isEmpty else {
                throw ValueProblem(
                    "\"\(text)\" has an empty entry; separate HOST:PORT entries by single commas (e.g. \(example),gateway-2.example.com:7443)"
                )
            }
            let entry = try parse(part, example: example)
            guard !list.contains(entry) else {
                throw ValueProblem("\(entry) is listed twice; list each gateway once")
            }
            list.append(entry)
        }
        return list
    }
}
