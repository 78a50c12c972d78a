import Testing

@testable import TunnelAudit

/// The exact lines the gateway writes for `stream_open` and `stream_deny`, built from values as
/// the gateway builds them (not read back from the spec): how the payload types group the
/// fields may change, the bytes on disk may not.
@Suite("Stream record bytes")
struct StreamRecordBytesTests {
    static let actor = AuditOperator(
        peer: AuditPeer(session: "12b555716fc19d6a", source: "127.0.0.1:49050"), name: "alice",
        subject: "tunnel://operator/alice", serial: "cb558c519be6249db9edf5680dda803", roles: ["admin"])
    static let target = StreamTarget(
        stream: "12b555716fc19d6a/3", node: "node-17", service: "shell", parameters: ["cols": "80", "rows": "24"],
        policyVersion: "f460c07b0ffee2d7")

    /// The line `event` encodes to as record 26 at 2026-03-01T10:00:25Z, without its newline.
    static func line(_ event: AuditEvent) throws -> String {
        var encoder = RecordEncoder()
        try encoder.encode(
            seq: 26, milliseconds: 1_772_359_225_000, type: event.type,
            prev: Array(repeating: UInt8(ascii: "0"), count: 64),
            fields: event.fields)
        return String(decoding: encoder.line.dropLast(), as: UTF8.self)
    }

    static let zeros = String(repeating: "0", count: 64)

    @Test("stream_open: the operator, the target and the grant, in one flat record")
    func streamOpen() throws {
        let event = AuditEvent.streamOpen(
            StreamRequestParties(actor: Self.actor, target: Self.target),
            StreamGrant(rule: "admins-anything", recording: "12b555716fc19d6a-3.cast"))
        #expect(
            try Self.line(event)
                == #"{"node":"node-17","operator":"alice","operator_serial":"cb558c519be6249db9edf5680dda803","operator_subject":"tunnel://operator/alice","parameters":{"cols":"80","rows":"24"},"policy_version":"f460c07b0ffee2d7","prev":"\#(Self.zeros)","recording":"12b555716fc19d6a-3.cast","roles":["admin"],"rule":"admins-anything","seq":26,"service":"shell","session":"12b555716fc19d6a","source":"127.0.0.1:49050","stream":"12b555716fc19d6a/3","time":"2026-03-01T10:00:25.000Z","type":"stream_open"}"#
        )
    }

    @Test("stream_deny: with its target once the names were checked, without it before")
    func streamDeny() throws {
        let denied = AuditEvent.streamDeny(
            StreamRequestParties(actor: Self.actor, target: Self.target), StreamGrant(rule: "admins-anything"),
            StreamDenial(outcome: "unavailable", reason: "node node-17 is not connected"))
        #expect(
            try Self.line(denied)
                == #"{"node":"node-17","operator":"alice","operator_serial":"cb558c519be6249db9edf5680dda803","operator_subject":"tunnel://operator/alice","outcome":"unavailable","parameters":{"cols":"80","rows":"24"},"policy_version":"f460c07b0ffee2d7","prev":"\#(Self.zeros)","reason":"node node-17 is not connected","roles":["admin"],"rule":"admins-anything","seq":26,"service":"shell","session":"12b555716fc19d6a","source":"127.0.0.1:49050","stream":"12b555716fc19d6a/3","time":"2026-03-01T10:00:25.000Z","type":"stream_deny"}"#
        )
        let refusedAtTheDoor = AuditEvent.streamDeny(
            StreamRequestParties(actor: Self.actor, target: nil), StreamGrant(),
            StreamDenial(outcome: "bad_request", reason: "the node name \"a b\" has a space"))
        #expect(
            try Self.line(refusedAtTheDoor)
                == #"{"operator":"alice","operator_serial":"cb558c519be6249db9edf5680dda803","operator_subject":"tunnel://operator/alice","outcome":"bad_request","prev":"\#(Self.zeros)","reason":"the node name \"a b\" has a space","roles":["admin"],"seq":26,"session":"12b555716fc19d6a","source":"127.0.0.1:49050","time":"2026-03-01T10:00:25.000Z","type":"stream_deny"}"#
        )
    }

    @Test("the parties a stream_close copies are those its stream_open names")
    func closeCopiesOpen() {
        let open = AuditEvent.streamOpen(StreamRequestParties(actor: Self.actor, target: Self.target), StreamGrant())
        #expect(
            StreamParties(stream: Self.target.stream, openFields: open.fields)
                == StreamParties(
                    stream: "12b555716fc19d6a/3", session: "12b555716fc19d6a", operatorName: "alice", node: "node-17",
                    service: "shell"))
    }
}
