import Foundation
import Testing

/// The core's boundary, checked: its manifest entry keeps TunnelIO and TunnelRuntime out of
/// reach, and this keeps the TLS layer and OpenSSL (which TunnelWire and TunnelAudit build on)
/// out of its imports.
@Suite("GatewayCore: boundary")
struct BoundaryTests {
    @Test("no file of TunnelGatewayCore imports TunnelIO, TunnelRuntime, TunnelTLS or OpenSSL")
    func importsNoIO() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/TunnelGatewayCore").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { $0.hasSuffix(".swift") }
        #expect(files.count >= 5)
        let forbidden = ["TunnelIO", "TunnelRuntime", "TunnelTLS", "COpenSSL", "CLibUV", "Foundation", "Glibc"]
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where line.contains("import ") {
                let module = line.split(separator: " ").last.map(String.init) ?? ""
                #expect(!forbidden.contains(module), "\(file): \(line)")
            }
        }
    }
}
