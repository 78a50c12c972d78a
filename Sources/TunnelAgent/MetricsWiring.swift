import Logging
import TunnelIO
import TunnelMetrics

/// Opens the `--metrics-listen` endpoint when one is set; nil when it is not (the default).
/// A port that cannot be bound stops the command, as the main listener's does.
package func startMetrics(
    _ address: HostPort?, loop: EventLoop, logger: Logger, exposition: @escaping () -> [UInt8],
    unreadiness: @escaping () -> [String]
) throws(CommandFailure) -> MetricsEndpoint? {
    guard let address else { return nil }
    do {
        let endpoint = try MetricsEndpoint(
            loop: loop, address: try SocketAddress(ip: address.host, port: address.port),
            exposition: exposition, unreadiness: unreadiness)
        logger.info("metrics listening", metadata: ["metrics.listen": "\(endpoint.localAddress)"])
        return endpoint
    } catch {
        throw .failed("cannot listen for metrics on \(address): \(error); pick another --metrics-listen", .portInUse)
    }
}
