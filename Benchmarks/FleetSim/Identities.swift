import Foundation
import TunnelRuntime
import TunnelTLS

/// The identity cache: `DIR/NAME.key` and `DIR/NAME.crt` (the chain the gateway issued) per
/// node, and `DIR/gateway-ca.pem`, the CA every chain ends in. A 10,000-node fleet is enrolled
/// once and reused by every scenario against the same gateway data directory. Written without
/// fsync: it is a benchmark's scratch, remade by enrolling again.
struct IdentityCache: Sendable {
    let directory: String

    func keyPath(_ name: String) -> String { "\(directory)/\(name).key" }
    func certificatePath(_ name: String) -> String { "\(directory)/\(name).crt" }
    var gatewayCAPath: String { "\(directory)/gateway-ca.pem" }

    func prepare() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// The cached identity of `name`, if both files are there and parse.
    func load(_ name: String) -> TLSIdentity? {
        guard FileManager.default.fileExists(atPath: certificatePath(name)) else { return nil }
        return try? TLSIdentity.load(certificatePath: certificatePath(name), keyPath: keyPath(name))
    }

    func gatewayCA() -> Certificate? {
        guard let bytes = FileManager.default.contents(atPath: gatewayCAPath) else { return nil }
        return try? Certificate.fromPEM(Array(bytes))
    }

    func save(name: String, key: PrivateKey, chainPEM: String, gatewayCA: Certificate) throws {
        try Data(key.pem()).write(to: URL(fileURLWithPath: keyPath(name)))
        if !FileManager.default.fileExists(atPath: gatewayCAPath) {
            try Data(gatewayCA.pem()).write(to: URL(fileURLWithPath: gatewayCAPath))
        }
        try Data(chainPEM.utf8).write(to: URL(fileURLWithPath: certificatePath(name)))
    }
}

/// Checks what the gateway issued: a chain whose leaf certifies our key and names `name`, ending
/// in the CA pinned by the token.
func acceptIssued(chainPEM: String, key: PrivateKey, name: String, pin: [UInt8]) throws -> (TLSIdentity, Certificate) {
    let chain = try Certificate.chainFromPEM(Array(chainPEM.utf8), source: "the gateway's reply")
    guard chain.count >= 2, let leaf = chain.first, let authority = chain.last else {
        throw FleetFailure("the gateway sent no certificate chain")
    }
    guard try leaf.publicKey().der() == key.publicKey().der() else { throw FleetFailure("certificate for another key") }
    let identity = try leaf.tunnelIdentity()
    guard identity.role == .node, identity.name == name else {
        throw FleetFailure("certificate for \(identity), not node \(name)")
    }
    guard authority.sha256Fingerprint == pin else { throw FleetFailure("chain does not end in the pinned CA") }
    return (TLSIdentity(chain: chain, key: key), authority)
}
