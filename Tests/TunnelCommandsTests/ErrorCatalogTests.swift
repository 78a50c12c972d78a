import Foundation
import Testing
@testable import TunnelCommands

@Suite struct ErrorCatalogTests {
    static let errorsDocument = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../docs/ERRORS.md").standardized.path

    @Test("every code is unique and has its entry in docs/ERRORS.md")
    func documented() throws {
        let text = try String(contentsOfFile: Self.errorsDocument, encoding: .utf8)
        let codes = ErrorCatalog.all.map(\.code)
        #expect(Set(codes).count == codes.count)
        for entry in ErrorCatalog.all {
            #expect(text.contains("\n## \(entry.code)\n"), "\(entry.code)")
            #expect(text.contains("**\(entry.name).**"), "\(entry.name)")
        }
    }

    @Test("failures are recognised by their sentences, and the CLI prints the fix and the code")
    func classified() {
        #expect(ErrorCatalog.classify("node press-3 is not connected to the gateway; `tunnel nodes` lists the connected ones") == ErrorCatalog.unknownNode)
        #expect(ErrorCatalog.unknownNode.code == "T101")
        #expect(ErrorCatalog.auditUnavailable.code == "T10A")
        #expect(ErrorCatalog.classify("cannot connect to the gateway at 127.0.0.1:7443: connection refused (ECONNREFUSED)") == ErrorCatalog.gatewayUnreachable)
        #expect(ErrorCatalog.classify("TLS error with 127.0.0.1:7443: certificate verify failed") == ErrorCatalog.gatewayCAMismatch)
        #expect(ErrorCatalog.classify("something nobody catalogued") == nil)
        let outcome = TunnelMain.outcome(of: CommandFailure.failed("node n is not connected to the gateway"))
        #expect(outcome.message == "tunnel: node n is not connected to the gateway\n  \(ErrorCatalog.unknownNode.fixLine)")
        #expect(outcome.exitCode == 1)
    }
}
