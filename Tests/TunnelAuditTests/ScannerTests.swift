import Foundation
import Testing

@testable import TunnelAudit

/// The reader accepts exactly the canonical form (docs/AUDIT.md §3.1), so that no two JSON
/// parsers can read different values out of one hashed line.
@Suite("Canonical form")
struct ScannerTests {
    private static let prev = String(repeating: "0", count: 64)
    private static let base = #""prev":"\#(prev)","seq":1,"time":"2026-03-01T10:00:00.000Z","type":"t""#

    private func parses(_ line: String) -> Bool {
        var bytes = Array(line.utf8)
        return bytes.withUnsafeMutableBytes { (try? RecordHeader.parse(UnsafeRawBufferPointer($0))) != nil }
    }

    @Test func acceptsTheWritersForms() {
        for fields in [
            #""a":"x""#, #""a":-1"#, #""a":0"#, #""a":1.5e-07"#, #""a":[]"#, #""a":["x","y"]"#,
            #""a":{}"#, #""a":{"k":"v","l":""}"#, #""a":null,"b":true,"c":false"#,
            #""a":"\"\\\b\f\n\r\t\u0001\u001f é😀/""#,
        ] {
            #expect(parses("{\(fields),\(Self.base)}"), "\(fields)")
        }
    }

    @Test func rejectsEverythingElse() {
        let cases = [
            #""a" :"x""#, #""a":"\/""#, #""a":"\u0041""#, #""a":"\u000A""#, #""a":"\u001F""#, #""a":"\x""#,
            #""a":-0"#, #""a":01"#, #""a":+1"#, #""a":1."#, #""a":.5"#, #""a":NaN"#, #""a":[1]"#, #""a":{"k":1}"#,
            #""a":{"k":{"x":"y"}}"#, #""a":{"l":"","k":""}"#, #""a":{"k":"","k":""}"#, #""b":1,"a":2"#,
            #""a":1,"a":2"#, #""a b":1"#, #""é":1"#, #""a":"x"#, #""a":tru"#,
        ]
        for fields in cases {
            #expect(!parses("{\(fields),\(Self.base)}"), "\(fields)")
        }
        #expect(!parses("{\(Self.base)} "))
        #expect(!parses(" {\(Self.base)}"))
        #expect(!parses("{\(Self.base.replacingOccurrences(of: "\"seq\":1", with: "\"seq\":-1"))}"))
        #expect(!parses("{\(Self.base.replacingOccurrences(of: "10:00:00.000Z", with: "10:00:00Z"))}"))
        #expect(!parses("{\(Self.base.replacingOccurrences(of: "\"prev\":\"0", with: "\"prev\":\"A"))}"))
    }

    @Test func rejectsInvalidUTF8() {
        for bad: [UInt8] in [
            [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x80], [0xFF],
        ] {
            var bytes = Array("{\"a\":\"".utf8) + bad + Array("\",\(Self.base)}".utf8)
            let accepted = bytes.withUnsafeMutableBytes { (try? RecordHeader.parse(UnsafeRawBufferPointer($0))) != nil }
            #expect(!accepted, "\(bad)")
        }
    }

    @Test func checkpointFieldsAreRequired() {
        let checkpoint = Self.base.replacingOccurrences(of: "\"type\":\"t\"", with: "\"type\":\"checkpoint\"")
        #expect(!parses("{\(checkpoint)}"))
        let complete =
            #"{"key_id":"0123456789abcdef","#
            + checkpoint.replacingOccurrences(
                of: "\"seq\":1,",
                with: #""reason":"close","seq":1,"signature":"AA==","signed_hash":"\#(Self.prev)","signed_seq":0,"#)
            + "}"
        #expect(parses(complete))
        #expect(!parses(complete.replacingOccurrences(of: "\"close\"", with: "\"shutdown\"")))
    }
}
