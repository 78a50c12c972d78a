import Testing
import TunnelCommands

/// Issue #13: `tunnel client --gateway` takes a cluster's replicas, comma-separated.
@Suite struct GatewayListTests {
    @Test("a list of replicas is read in order; one entry is a list of one")
    func accepted() throws {
        #expect(
            try HostPort.parseList("a.example:7443, 10.0.0.2:7443,[::1]:7443", example: "gw:7443")
                == [
                    HostPort(host: "a.example", port: 7443), HostPort(host: "10.0.0.2", port: 7443),
                    HostPort(host: "::1", port: 7443),
                ])
        #expect(try HostPort.parseList("gw:7443", example: "gw:7443") == [HostPort(host: "gw", port: 7443)])
    }

    @Test("empty entries, repeats, too many entries and a bad entry are refused, naming the culprit")
    func refused() {
        let cases: [(String, String)] = [
            ("a:7443,,b:7443", "empty entry"),
            ("a:7443,a:7443", "a:7443 is listed twice"),
            ((1...17).map { "g\($0):7443" }.joined(separator: ","), "17 gateways listed; at most 16"),
            ("a:7443,b", "\"b\" is not HOST:PORT"),
        ]
        for (text, expected) in cases {
            #expect(throws: ValueProblem.self) { try HostPort.parseList(text, example: "gw:7443") }
            do {
                _ = try HostPort.parseList(text, example: "gw:7443")
            } catch {
                #expect(error.text.contains(expected), "\(error.text)")
            }
        }
    }
}
