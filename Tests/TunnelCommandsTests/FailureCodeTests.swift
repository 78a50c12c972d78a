import Foundation
import Multiplex
import Testing
import TunnelClient
import TunnelOperator
import TunnelRuntime

@testable import TunnelCommands

/// Every `CommandFailure` carries a `FailureCode` (its initialisers have no default), so these
/// tests check the codes themselves: documented, and chosen from the failure's cause.
@Suite struct FailureCodeTests {
    static let errorsDocument = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../docs/ERRORS.md").standardized.path

    @Test("every code has its entry in docs/ERRORS.md, and every entry there is a code")
    func documented() throws {
        let text = try String(contentsOfFile: Self.errorsDocument, encoding: .utf8)
        for code in FailureCode.allCases {
            #expect(text.contains("\n## \(code.code)\n"), "\(code.code)")
            #expect(text.contains("\n**\(code.name).**"), "\(code.name)")
        }
        let headings = text.split(separator: "\n").filter { $0.hasPrefix("## T") }.map { String($0.dropFirst(3)) }
        #expect(headings.sorted() == FailureCode.allCases.map(\.code).sorted())
        #expect(Set(FailureCode.allCases.map(\.name)).count == FailureCode.allCases.count)
    }

    @Test("a gateway refusal is coded by its wire code; other causes by where they happened")
    func causes() {
        let wire: [ErrorCode] = [
            TunnelErrorCode.unknownNode, TunnelErrorCode.unknownService, TunnelErrorCode.serviceUnreachable,
            TunnelErrorCode.badRequest, TunnelErrorCode.wrongRole, TunnelErrorCode.replaced,
            TunnelErrorCode.nodeDisconnected, TunnelErrorCode.denied, TunnelErrorCode.revoked,
            TunnelErrorCode.auditUnavailable, TunnelErrorCode.nodeBusy,
        ]
        for code in wire {
            let name = FailureCode(wire: code)?.code
            #expect(name == "T" + String(code.rawValue, radix: 16, uppercase: true))
        }
        #expect(FailureCode(wire: .refusedStream) == nil)
        #expect(FailureCode(.refused(TunnelErrorCode.denied)) == .denied)
        #expect(FailureCode(.refused(.refusedStream)) == .streamEnded)
        #expect(FailureCode(.unreachable) == .gatewayUnreachable)
        #expect(FailureCode(.handshake) == .gatewayCAMismatch)
        let reset = Failure(TunnelErrorCode.unknownNode, "no such node")
        #expect(CommandFailure(OperatorFailure.streamEnded(reset, "node n is not connected")).code == .unknownNode)
    }

    @Test("the CLI prints the sentence, then the fix and the code")
    func printed() {
        let outcome = TunnelMain.outcome(
            of: CommandFailure.failed("node n is not connected to the gateway", .unknownNode))
        #expect(
            outcome.message == "tunnel: node n is not connected to the gateway\n  \(FailureCode.unknownNode.fixLine)")
        #expect(FailureCode.unknownNode.fixLine.hasSuffix("(T101, docs/ERRORS.md#t101)"))
        #expect(outcome.exitCode == 1)
    }
}
