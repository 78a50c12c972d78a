import Foundation
import TunnelTLS

/// What the simulator needs from an operator bundle (`tunnel user add --out FILE`): the
/// certificate chain, the key and the gateway CA. The bundle is a YAML mapping whose values
/// `certificate`, `key` and `gateway-ca` are PEM texts in literal blocks; the simulator reads the
/// PEM lines under each key rather than parsing YAML (the benchmarks package has no YAML parser).
struct OperatorBundle: @unchecked Sendable {
    let identity: TLSIdentity
    let gatewayCA: Certificate

    static func load(path: String) throws -> OperatorBundle {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw UsageError("cannot read the operator bundle \(path)")
        }
        var sections: [String: String] = [:]
        var key: String?
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            if !line.hasPrefix(" "), !line.hasPrefix("#"), let colon = line.firstIndex(of: ":") {
                key = String(line[..<colon])
            } else if let key, line.hasPrefix("  ") {
                sections[key, default: ""] += line.trimmingCharacters(in: .whitespaces) + "\n"
            }
        }
        guard let chainPEM = sections["certificate"], let keyPEM = sections["key"], let caPEM = sections["gateway-ca"]
        else {
            throw UsageError("\(path) is not an operator bundle (want certificate, key and gateway-ca)")
        }
        let chain = try Certificate.chainFromPEM(Array(chainPEM.utf8), source: path)
        let privateKey = try PrivateKey(pem: Array(keyPEM.utf8), source: path)
        let gatewayCA = try Certificate.fromPEM(Array(caPEM.utf8), source: path)
        return OperatorBundle(identity: TLSIdentity(chain: chain, key: privateKey), gatewayCA: gatewayCA)
    }
}
