/// The services a node offers, by name, and what serves a stream the gateway asks for: decided
/// from the node's own configuration alone, never from an address the gateway sends, so nothing
/// the gateway says can turn the node into a pivot into the plant network.
public struct ServiceDirectory: Sendable, Equatable {
    /// What serves a stream.
    public enum Route: Sendable, Equatable {
        /// The API server behind the built-in Kubernetes service.
        case kubernetes
        /// A service the client provides itself (the recorded shell, device logs).
        case builtIn
        /// A local address of the configuration, dialed and spliced.
        case local
        /// Not offered here: the stream is refused (`unknown-service`).
        case unknown
    }

    private let local: Set<String>
    private let builtIn: Set<String>
    private let kubernetes: String?

    /// - Parameter kubernetes: the Kubernetes service's name when an API server is configured.
    public init(local: some Sequence<String>, builtIn: some Sequence<String>, kubernetes: String?) {
        self.local = Set(local)
        self.builtIn = Set(builtIn)
        self.kubernetes = kubernetes
    }

    /// Every name the node announces, sorted.
    public var names: [String] { (local.union(builtIn).union(kubernetes.map { [$0] } ?? [])).sorted() }

    public func route(_ service: String) -> Route {
        if service == kubernetes { return .kubernetes }
        if builtIn.contains(service) { return .builtIn }
        if local.contains(service) { return .local }
        return .unknown
    }
}
