import Testing
import TunnelRuntime

/// What an auditor may fetch over the tunnel: the log's own files, never the signing key or a path out.
@Suite struct AuditReadTests {
    @Test(arguments: ["audit-000001.jsonl", "audit-123456789.jsonl", "audit-key.pub.pem", "recordings/abc-1.cast"])
    func auditFilesAreOffered(name: String) { #expect(AuditReadReply.isAuditFile(name)) }

    @Test(arguments: [
        "audit-key.pem", "../audit-000001.jsonl", "audit-.jsonl", "audit-00x.jsonl", "recordings/../../etc/passwd.cast",
        "recordings/.hidden.cast", "recordings/a/b.cast", "/etc/shadow", "recordings/x.cast\u{0}", "policy.yaml",
    ])
    func everythingElseIsRefused(name: String) { #expect(!AuditReadReply.isAuditFile(name)) }
}
