import Glibc
import Testing
import TunnelTLS

@Suite("DurableFile")
struct DurableFileTests {
    /// A fresh private directory per test, removed afterwards by the test.
    func makeDirectory() throws -> String {
        var template = Array("/tmp/tunnel-tls-test-XXXXXX".utf8CString)
        let path = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) })
        return String(cString: path)
    }

    func entries(_ directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    func mode(_ path: String) -> UInt32 {
        var status = stat()
        return stat(path, &status) == 0 ? UInt32(status.st_mode) & 0o7777 : 0
    }

    @Test func writesExactModeAndLeavesNoTemporaryFiles() throws {
        let directory = try makeDirectory()
        defer {
            for name in entries(directory) { unlink("\(directory)/\(name)") }
            rmdir(directory)
        }
        let path = "\(directory)/node.key"

        try DurableFile.write(path: path, bytes: Array("first".utf8), mode: 0o600)
        #expect(mode(path) == 0o600)
        #expect(try DurableFile.read(path: path) == Array("first".utf8))

        // 0o660 would come out as 0o640 under the usual umask 022 without the explicit fchmod.
        try DurableFile.write(path: path, bytes: Array("second, longer".utf8), mode: 0o660)
        #expect(mode(path) == 0o660)
        #expect(try DurableFile.read(path: path) == Array("second, longer".utf8))
        #expect(entries(directory) == ["node.key"])
    }

    @Test func failuresNameThePathAndReadsAreBounded() throws {
        let error = #expect(throws: TLSError.self) {
            try DurableFile.write(path: "/nonexistent-dir/x.key", bytes: [1], mode: 0o600)
        }
        #expect(error?.code == .file)
        #expect(error?.message.contains("/nonexistent-dir") == true)

        let directory = try makeDirectory()
        defer {
            for name in entries(directory) { unlink("\(directory)/\(name)") }
            rmdir(directory)
        }
        try DurableFile.write(path: "\(directory)/big", bytes: [UInt8](repeating: 7, count: 2048), mode: 0o644)
        #expect(throws: TLSError.self) { try DurableFile.read(path: "\(directory)/big", limit: 1024) }
        #expect(try DurableFile.read(path: "\(directory)/big").count == 2048)
    }

    @Test func identityLoadsFromDurableFiles() throws {
        let directory = try makeDirectory()
        defer {
            for name in entries(directory) { unlink("\(directory)/\(name)") }
            rmdir(directory)
        }
        let pki = try PKI()
        let gateway = try pki.gatewayIdentity()
        try DurableFile.write(path: "\(directory)/gw.crt", bytes: Certificate.pem(chain: gateway.chain), mode: 0o644)
        try DurableFile.write(path: "\(directory)/gw.key", bytes: gateway.key.pem(), mode: 0o600)
        let loaded = try TLSIdentity.load(certificatePath: "\(directory)/gw.crt", keyPath: "\(directory)/gw.key")
        #expect(loaded.chain.map(\.sha256Fingerprint) == gateway.chain.map(\.sha256Fingerprint))
        #expect(loaded.keyPath == "\(directory)/gw.key")
    }
}
