import Logging
import TunnelIO
import TunnelRuntime
import TunnelTLS
import TunnelText

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Where a node keeps its identity: its key (made on the node, never sent anywhere), its
/// certificate, and the CA certificate that verifies the gateway.
public struct NodeCredentialFiles: Sendable, Equatable {
    public var certificate: String
    public var key: String
    public var gatewayCA: String

    public init(certificate: String, key: String, gatewayCA: String) {
        self.certificate = certificate
        self.key = key
        self.gatewayCA = gatewayCA
    }
}

/// Enrollment with a join token and the files it leaves behind. Every file is replaced
/// atomically and durably (write, fsync, rename, fsync the directory), so a power cut leaves the
/// old file or the new one, never a torn or empty one; the certificate is written last, so its
/// presence means the enrollment completed.
public enum NodeCredentials {
    /// The node's key: the existing one (a retry after a crash reuses it, and the gateway
    /// recognises it), or a new P-256 key saved with mode 0600 before anything is sent.
    public static func loadOrCreateKey(at path: String) throws -> PrivateKey {
        if FileManager.default.fileExists(atPath: path) {
            return try PrivateKey(pem: DurableFile.read(path: path), source: path)
        }
        let key = try PrivateKey.generateP256()
        try DurableFile.write(path: path, bytes: key.pem(), mode: 0o600)
        return key
    }

    /// Checks what the gateway issued: a chain whose leaf certifies our key, names us (when we
    /// know our name) and was signed by the CA we trust or pinned.
    public static func accept(
        chainPEM: String, key: PrivateKey, expectedName: String?, gatewayCA: Certificate?, pin: [UInt8]? = nil
    ) throws -> TLSIdentity {
        let chain = try Certificate.chainFromPEM(Array(chainPEM.utf8), source: "the gateway's reply")
        guard chain.count >= 2, let leaf = chain.first, let authority = chain.last else {
            throw FleetFailure("the gateway sent no certificate chain")
        }
        guard try leaf.publicKey().der() == key.publicKey().der() else {
            throw FleetFailure("the gateway issued a certificate for another key")
        }
        let identity = try leaf.tunnelIdentity()
        guard identity.role == .node, expectedName == nil || identity.name == expectedName else {
            throw FleetFailure("the gateway issued a certificate for \(identity), not for node \(expectedName ?? "?")")
        }
        if let gatewayCA, authority.sha256Fingerprint != gatewayCA.sha256Fingerprint {
            throw FleetFailure("the certificate was signed by \(authority.displayName), not by the gateway CA we trust")
        }
        if let pin, authority.sha256Fingerprint != pin {
            throw FleetFailure("the certificate was signed by a CA other than the one pinned in the token")
        }
        return TLSIdentity(chain: chain, key: key)
    }

    /// Saves the gateway CA (when new) and then the certificate chain.
    public static func save(certificateChain: String, gatewayCA: Certificate?, to files: NodeCredentialFiles) throws {
        if let gatewayCA {
            try DurableFile.write(path: files.gatewayCA, bytes: gatewayCA.pem(), mode: 0o644)
        }
        try DurableFile.write(path: files.certificate, bytes: Array(certificateChain.utf8), mode: 0o644)
    }

    /// The node's key (made or reused) and its redemption of `token`.
    private static func redeemRequest(token: JoinToken, nodeName: String?, labels: [String: String], keyPath: String)
        throws -> (PrivateKey, EnrollmentRequest)
    {
        let key = try loadOrCreateKey(at: keyPath)
        let csr = String(
            decoding: try CertificateSigningRequest(key: key, commonName: nodeName ?? "node").pem(), as: UTF8.self)
        // Node names are lower-case (docs/TUNNEL.md §6); a host called PLC-07 enrolls as plc-07.
        let hostName = ProcessInfo.processInfo.hostName.split(separator: ".").first.map { Names.asciiLowercased($0) }
        let request = EnrollmentRequest.redeem(
            RedeemRequest(
                tokenID: token.id, secret: token.secret, nodeName: nodeName, hostName: hostName, labels: labels,
                csr: csr))
        return (key, request)
    }

    /// Checks the issued chain against the token's pin and saves it with the CA it names.
    private static func keep(_ reply: CertificateReply, key: PrivateKey, pin: [UInt8], files: NodeCredentialFiles)
        throws -> TLSIdentity
    {
        guard let pem = reply.certificate else { throw FleetFailure("the gateway sent no certificate") }
        let identity = try accept(chainPEM: pem, key: key, expectedName: nil, gatewayCA: nil, pin: pin)
        try save(certificateChain: pem, gatewayCA: identity.chain.last, to: files)
        return TLSIdentity(chain: identity.chain, key: key, certificatePath: files.certificate, keyPath: files.key)
    }

    /// `tunnel client --token`: makes or reuses the key, checks the gateway against the token's CA
    /// pin before sending anything, trades the token for a certificate and saves everything.
    /// A wrong clock (the gateway's certificate not yet valid here) is corrected by asking the
    /// gateway's time on a pinned connection and retrying at that time.
    public static func enroll(
        loop: EventLoop, host: String, port: UInt16, serverName: String, token: JoinToken, nodeName: String?,
        labels: [String: String], files: NodeCredentialFiles, logger: Logger,
        completion: @escaping (Result<TLSIdentity, FleetFailure>) -> Void
    ) {
        let key: PrivateKey
        let request: EnrollmentRequest
        do {
            (key, request) = try redeemRequest(token: token, nodeName: nodeName, labels: labels, keyPath: files.key)
        } catch {
            return completion(.failure(FleetFailure("cannot prepare the node key \(files.key): \(error)")))
        }
        func call(at time: TLSConnection.CertificateTime, checkClock: Bool) {
            EnrollmentCall(
                loop: loop, host: host, port: port, serverName: serverName,
                verification: .pinnedCA(sha256: token.caPin),
                identity: nil, certificateTime: time, request: request, logger: logger
            ) { result, tlsError in
                switch result {
                case .success(let reply):
                    completion(
                        Result { try keep(reply, key: key, pin: token.caPin, files: files) }
                            .mapError { FleetFailure("enrollment reply unusable: \($0)") })
                case .failure(let failure):
                    guard checkClock, tlsError?.refusedCertificateDates == true else {
                        return completion(.failure(failure))
                    }
                    askTime(then: call)
                }
            }
        }
        func askTime(then retry: @escaping (TLSConnection.CertificateTime, Bool) -> Void) {
            EnrollmentCall(
                loop: loop, host: host, port: port, serverName: serverName,
                verification: .pinnedCA(sha256: token.caPin),
                identity: nil, certificateTime: .unchecked, request: .time, logger: logger
            ) { result, _ in
                switch result {
                case .success(let reply):
                    let local = Int64(Date().timeIntervalSince1970)
                    logger.error(
                        "this machine's clock is wrong; enrolling at the gateway's time (enable NTP or set the clock)",
                        metadata: [
                            "clock.local": "\(UTCTime.format(local))",
                            "clock.gateway": "\(UTCTime.format(reply.gatewayTime))",
                        ])
                    retry(.fixed(reply.gatewayTime), false)
                case .failure(let failure):
                    completion(.failure(failure))
                }
            }
        }
        call(at: .systemClock, checkClock: true)
    }
}
