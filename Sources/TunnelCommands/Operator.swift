import Foundation
import Logging
import TunnelTLS

/// What `tunnel whoami` reports: who the installed operator certificate says you are.
public enum OperatorStatus {
    /// Reads the certificate and key named by the operator settings and describes them in a few lines.
    /// Fails (one line) when a file is missing, the key does not match or the certificate expired.
    public static func describe(_ settings: OperatorSettings, now: Int64 = Int64(Date().timeIntervalSince1970)) throws(CommandFailure) -> String {
        let certificate: Certificate, key: PrivateKey
        do {
            certificate = try Certificate.fromPEM(try DurableFile.read(path: settings.cert), source: settings.cert)
            key = try PrivateKey(pem: try DurableFile.read(path: settings.key), source: settings.key)
            _ = try Certificate.fromPEM(try DurableFile.read(path: settings.gatewayCA), source: settings.gatewayCA)
        } catch {
            throw .failed("\(oneLine(error)); run `tunnel login BUNDLE` to install your operator files")
        }
        let identity: TunnelIdentity
        do {
            guard try certificate.publicKey().der() == key.publicKey().der() else {
                throw CommandFailure.failed("\(settings.key) does not belong to \(settings.cert); run `tunnel login BUNDLE` again")
            }
            identity = try certificate.tunnelIdentity()
        } catch {
            throw .failed(oneLine(error))
        }
        var lines = [
            "identity:    \(identity)",
            "gateway:     \(settings.gateway) (TLS name \(settings.serverName))",
            "valid until: \(isoDate(certificate.notAfter))",
        ]
        if now >= certificate.notAfter {
            lines.append("EXPIRED: ask an admin for a new bundle (tunnel user add)")
        } else if certificate.notAfter - now < 7 * 86_400 {
            lines.append("expires in less than 7 days: run `tunnel renew`")
        }
        return lines.joined(separator: "\n")
    }
}

/// Process-wide logging for the long-running commands.
public enum TunnelLogging {
    /// Installs a stderr log handler at `level` and returns the root logger.
    /// Call exactly once per process (swift-log refuses a second bootstrap), from a command's `run()`.
    public static func bootstrap(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "tunnel")
        logger.logLevel = level
        return logger
    }
}
